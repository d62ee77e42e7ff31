"""The one ranking rule: accuracy, then the gold log-probability, then candidate id; ties displayed as ties."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from reward_search.candidates.records import LeaderboardEntry, rank_entries, rank_labels
from reward_search.proposers.feedback import build_feedback
from reward_search.search.progress import leaderboard_table
from reward_search.testing.local_ray import start_local_ray


def entry(cid: str, accuracy: float | None, gold: float | None, status: str = "done", **extra) -> LeaderboardEntry:
    return LeaderboardEntry(
        candidate_id=cid,
        name=f"reward_{cid}",
        round=1,
        proposer="test",
        status=status,
        source="def f(completions, **kw): return [0.0] * len(completions)",
        accuracy=accuracy,
        gold_logprob=gold,
        n=50,
        correct=None if accuracy is None else round(accuracy * 50),
        **extra,
    )


def test_accuracy_ties_are_ordered_by_the_gold_logprob_then_the_id():
    entries = [
        entry("c", 0.0, -1.30),
        entry("a", 0.0, -1.10),
        entry("e", 0.02, -2.50),  # more accurate: first whatever its log-prob
        entry("b", 0.0, -1.30),  # ties c on both keys: the id decides
        entry("d", 0.0, None),  # no signal recorded: last among its accuracy
        entry("x", None, None, status="failed"),
    ]
    ranked = [e.candidate_id for e in rank_entries(entries)]
    assert ranked == ["e", "a", "b", "c", "d"]
    assert rank_labels(rank_entries(entries)) == ["1", "2", "=3", "=3", "5"]


def test_gold_logprobs_equal_to_four_decimals_are_a_tie_broken_by_the_id():
    # measured in a demo run: two rewards that ordered every group alike ended 5e-7 apart
    entries = [entry("b", 0.0, -1.2247452), entry("a", 0.0, -1.2247448), entry("c", 0.0, -1.2461)]
    ranked = rank_entries(entries, "gold_logprob")
    assert [e.candidate_id for e in ranked] == ["a", "b", "c"]  # the id decides, not the noise
    assert rank_labels(ranked, "gold_logprob") == ["=1", "=1", "3"]
    apart = [entry("b", 0.0, -1.2246), entry("a", 0.0, -1.2248)]  # 2e-4 apart: separated
    assert rank_labels(rank_entries(apart, "gold_logprob"), "gold_logprob") == ["1", "2"]
    assert [e.candidate_id for e in rank_entries(apart, "gold_logprob")] == ["b", "a"]


def test_the_graded_signal_can_be_the_primary_key():
    entries = [entry("a", 0.04, -2.0), entry("b", 0.0, -1.0), entry("c", 0.02, -1.0)]
    assert [e.candidate_id for e in rank_entries(entries, "accuracy")] == ["a", "c", "b"]
    assert [e.candidate_id for e in rank_entries(entries, "gold_logprob")] == ["c", "b", "a"]
    with pytest.raises(ValueError, match="unknown selection metric"):
        rank_entries(entries, "f1")


def test_feedback_and_table_follow_the_rule_and_show_ties_and_no_signal():
    no_signal = {"signal": {"no_signal": "no signal: your reward gave every completion in a group the same score"}}
    entries = [entry("a", 0.0, -1.5, curve_summary=no_signal), entry("b", 0.0, -1.2), entry("c", 0.0, -1.2)]
    feedback = build_feedback(entries, round=2)
    assert [e.candidate_id for e in feedback.ranked] == ["b", "c", "a"]
    text = feedback.render()
    assert "| =1 | reward_b |" in text and "| =1 | reward_c |" in text and "| 3 | reward_a |" in text
    assert "your reward gave every completion in a group the same score" in text
    table = leaderboard_table(entries)
    assert "ranked by accuracy, then gold log-prob" in table
    rows = [line for line in table.splitlines() if "reward_" in line]
    assert rows[0].split()[0] == "=1" and rows[2].split()[0] == "3" and "no signal" in rows[2]


def test_the_best_finalize_recipe_follows_the_rule():
    from reward_search.search.finalize import FinalJob, best_job
    from reward_search.training.spec import RewardSpec

    def job(name: str, kind: str, accuracy: float, gold: float | None, members: int = 2) -> FinalJob:
        result = {"status": "done", "selection_accuracy": accuracy, "selection_gold_logprob": gold}
        return FinalJob(name, kind, ["m"] * members, ["i"] * members, 4, 0, RewardSpec(), result)

    jobs = [job("top3", "top_k", 0.0, -1.4, 3), job("top5", "top_k", 0.0, -1.2, 5), job("base", "baseline", 0.1, -1.0)]
    assert best_job(jobs).name == "top5"  # accuracy tied: the gold log-prob decides; the baseline never counts
    jobs.append(job("diverse", "diverse", 0.02, -1.6))
    assert best_job(jobs, "accuracy").name == "diverse"
    assert best_job(jobs, "gold_logprob").name == "top5"


def _mixed_board() -> list[LeaderboardEntry]:
    """Ties on both keys, a repeated name, a missing signal, and entries that are not ranked, in no useful order."""
    rows = [
        entry("k", 0.04, -1.5),
        entry("d", 0.02, -1.2),
        entry("q", 0.02, -1.2),  # ties d on both keys
        entry("a", 0.02, None),
        entry("m", 0.06, -2.0),
        entry("b", 0.02, -1.2),  # ties d and q
        entry("z", None, None, status="rejected"),
        entry("f", 0.0, -0.9),
        entry("x", None, None, status="crashed"),
    ]
    return [dataclasses.replace(e, name="reward") if e.candidate_id in ("d", "q", "b") else e for e in rows]


@pytest.mark.parametrize("metric", ["accuracy", "gold_logprob"])
def test_every_consumer_orders_the_same_board_identically(tmp_path, metric):
    """The leaderboard, the feedback (and so the evolutionary parents), the status table, the live status, the report
    and finalize's choice of recipe all follow `rank_entries`, ties and repeated names included."""
    from reward_search.analysis.rundata import RunData
    from reward_search.config import load_config
    from reward_search.search.finalize import FinalJob, best_job
    from reward_search.search.leaderboard import LeaderboardCore
    from reward_search.search.live import format_live_status
    from reward_search.training.spec import RewardSpec

    board = _mixed_board()
    expected = [e.candidate_id for e in rank_entries(board, metric)]
    assert expected == (
        ["m", "k", "b", "d", "q", "a", "f"] if metric == "accuracy" else ["f", "b", "d", "q", "k", "m", "a"]
    )

    core = LeaderboardCore(str(tmp_path / "run"), metric=metric)
    core.entries = {e.candidate_id: e for e in reversed(board)}
    assert [e.candidate_id for e in core.ranked()] == expected
    assert core.summary()["best"]["name"] == next(e.name for e in board if e.candidate_id == expected[0])

    assert [e.candidate_id for e in build_feedback(board, round=2, metric=metric).ranked] == expected

    names = [next(e.name for e in board if e.candidate_id == cid) for cid in expected]
    for table in (
        leaderboard_table(board, metric=metric),
        format_live_status({"run": "r", "summary": core.summary(), "entries": [e.to_dict() for e in board]}),
    ):
        rows = [
            line.split() for line in table.splitlines() if line.split()[1:2] and line.split()[1].startswith("reward")
        ]
        assert [row[1] for row in rows[: len(expected)]] == names

    config = load_config(None, [f"selection.metric={metric}"])
    report = RunData(tmp_path, config, {}, {}, list(reversed(board)), None)
    assert [e.candidate_id for e in report.ranked()] == expected

    def job(e: LeaderboardEntry) -> FinalJob:
        result = {"status": "done", "selection_accuracy": e.accuracy, "selection_gold_logprob": e.gold_logprob}
        return FinalJob(e.candidate_id, "top_k", ["m"], ["i"], 4, 0, RewardSpec(), result)

    jobs = [job(e) for e in board if e.status == "done"]
    assert best_job(jobs, metric).name == expected[0]
    assert best_job([j for j in jobs if j.name in ("q", "b", "d")], metric).name == "b"  # a tie: the name decides


def test_repeated_names_are_ordered_by_id_whatever_the_input_order():
    same = [dataclasses.replace(entry(cid, 0.1, -1.0), name="reward") for cid in ("c3", "a1", "d4", "b2")]
    for order in itertools.permutations(same):
        ranked = rank_entries(order)
        assert [e.candidate_id for e in ranked] == ["a1", "b2", "c3", "d4"]
        assert rank_labels(ranked) == ["=1"] * 4


def test_ties_share_a_rank_wherever_they_fall():
    board = _mixed_board()
    assert rank_labels(rank_entries(board)) == ["1", "2", "=3", "=3", "=3", "6", "7"]
    assert rank_labels(rank_entries(board, "gold_logprob"), "gold_logprob") == ["1", "=2", "=2", "=2", "5", "6", "7"]
    assert rank_labels([]) == []


def test_the_evolutionary_proposer_breeds_from_the_top_of_the_rule():
    """Its parents are the first `evolution.parents` entries of `rank_entries`, even where an older rule (CI low
    before the graded signal) would have picked others."""
    from reward_search.proposers.registry import make_proposer
    from reward_search.proposers.settings import EvolutionConfig, ProposerConfig

    config = ProposerConfig(seed=5, evolution=EvolutionConfig(parents=2, fresh_fraction=0.0))
    seeds = make_proposer(config).propose(build_feedback([], 1), 4, round=1)
    scores = [(0.1, -2.0, 0.09), (0.1, -1.0, 0.01), (0.0, -0.5, 0.0), (0.1, -1.5, 0.02)]  # accuracy, gold, CI low
    board = [
        dataclasses.replace(entry(c.id, acc, gold, ci_low=low), name=c.name, source=c.source)
        for c, (acc, gold, low) in zip(seeds, scores, strict=True)
    ]
    top = {e.candidate_id for e in rank_entries(board)[:2]}
    assert top == {seeds[1].id, seeds[3].id}
    children = make_proposer(config).propose(build_feedback(board, 2), 6, round=2)
    parents = {p for child in children for p in child.origin.parents}
    assert parents and parents <= top


@pytest.mark.slow
def test_a_shortened_demo_leaderboard_is_not_all_tied(tmp_path):
    """The demo preset (embedded SmolLM2-135M) cut to one round of two candidates and one step: the graded signal
    separates the candidates although their accuracy cannot move."""
    from pathlib import Path

    import ray

    from reward_search.config import load_config
    from reward_search.search.driver import run_search

    demo = Path(__file__).resolve().parent.parent / "experiments" / "demo-gsm8k.yaml"
    config = load_config(
        demo,
        [
            f"run.storage_path={tmp_path}",
            "search.rounds=1",
            "search.candidates_per_round=2",
            "search.dashboard=false",
            "finalize.enabled=false",
            "training.steps=1",
            "training.report_every=1",
            "training.selection_size=8",
            "training.eval_max_new_tokens=16",
        ],
    )
    assert config.selection.metric == "gold_logprob"  # the demo ranks on the graded signal
    start_local_ray(num_cpus=2)
    try:
        outcome = run_search(config, verbose=False)
    finally:
        ray.shutdown()
    ranked = rank_entries(outcome.entries, config.selection.metric)
    assert len(ranked) == 2, [(e.name, e.status, e.reasons) for e in outcome.entries]
    assert all(e.gold_logprob is not None for e in ranked)
    assert rank_labels(ranked, config.selection.metric) == ["1", "2"]  # separated, not tied
    for entry in ranked:  # every adapter moved: the graded base reward gives each run a gradient
        signal = entry.curve_summary["signal"]
        assert signal["adapter_norm"] > 1e-3 and signal["tied_step_share"] == 0.0, signal
    # the two fresh rewards of round 1 reward different things (the proposer spreads a batch over its primitives)
    from reward_search.proposers.evolutionary import parse_genome

    primitives = [{t["primitive"] for t in parse_genome(e.source)} for e in ranked]
    assert not primitives[0] & primitives[1], primitives
