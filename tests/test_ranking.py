"""The one ranking rule: accuracy, then the gold log-probability, then candidate id; ties displayed as ties."""

from __future__ import annotations

import pytest

from reward_search.candidates.records import LeaderboardEntry, rank_entries, rank_labels
from reward_search.proposers.feedback import build_feedback
from reward_search.search.progress import leaderboard_table


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


@pytest.mark.slow
def test_a_shortened_demo_leaderboard_is_not_all_tied(tmp_path):
    """The demo preset (embedded SmolLM2-135M) cut to one round of two candidates and two steps: the graded signal
    separates the candidates although their accuracy cannot move."""
    from pathlib import Path

    import ray

    from reward_search.config import load_config
    from reward_search.search.driver import run_search

    demo = Path(__file__).resolve().parent.parent / "experiments" / "demo.yaml"
    config = load_config(
        demo,
        [
            f"run.storage_path={tmp_path}",
            "search.rounds=1",
            "search.candidates_per_round=2",
            "search.dashboard=false",
            "finalize.enabled=false",
            "training.steps=2",
            "training.selection_size=8",
            "training.eval_max_new_tokens=16",
        ],
    )
    assert config.selection.metric == "gold_logprob"  # the demo ranks on the graded signal
    if ray.is_initialized():
        ray.shutdown()
    for attempt in range(3):  # a fresh local Ray (never another user's); its start can time out on a loaded host
        try:
            ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    try:
        outcome = run_search(config, verbose=False)
    finally:
        ray.shutdown()
    ranked = rank_entries(outcome.entries, config.selection.metric)
    assert len(ranked) == 2, [(e.name, e.status, e.reasons) for e in outcome.entries]
    assert all(e.gold_logprob is not None for e in ranked)
    assert rank_labels(ranked, config.selection.metric) == ["1", "2"]  # separated, not tied
    for entry in ranked:  # and each screening run learned something
        assert entry.curve_summary["signal"]["no_signal"] is None, entry.curve_summary["signal"]
