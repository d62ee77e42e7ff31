"""The search-quality benchmark: the unguided switch, planted decoys, the arm statistics, bad input, one smoke run.

The statistics run on fake records (their answers checked against scipy and statsmodels by hand-built cases); the
proposer tests run the real evolutionary proposer in-process; the bad-input and smoke tests run the real script.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from reward_search.analysis.quality import (
    CandidateRow,
    arm_comparison,
    best_row,
    control_gaps,
    decoy_table,
    dev_test_correlation,
    mean_ci,
    paired_test,
    round_curves,
    rows_from_entries,
    verdict,
)
from reward_search.candidates.records import LeaderboardEntry
from reward_search.config import load_config
from reward_search.errors import ConfigError
from reward_search.proposers.feedback import WITHHELD_TEXT, build_feedback
from reward_search.proposers.planted import PLANTED, PlantedProposer
from reward_search.proposers.registry import make_proposer
from reward_search.proposers.settings import ProposerConfig

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "search_quality.py"
DECOYS = sorted((REPO / "benchmarks" / "decoys").glob("*.py"))


# --------------------------------------------------------------------------------------------------- proposers


def _results(candidates, accuracies, statuses=None) -> list[LeaderboardEntry]:
    """Round-1 leaderboard rows for `candidates` with the given accuracies (a fake screening outcome)."""
    rows = []
    for i, (c, acc) in enumerate(zip(candidates, accuracies, strict=True)):
        status = (statuses or ["done"] * len(candidates))[i]
        rows.append(
            LeaderboardEntry(
                candidate_id=c.id,
                name=c.name,
                round=1,
                proposer=c.origin.proposer,
                status=status,
                source=c.source,
                accuracy=acc if status == "done" else None,
                n=50,
                reasons=[] if status == "done" else ["crashed: boom"],
            )
        )
    return rows


def _round_two(feedback_style: str, accuracies, statuses=None) -> list[str]:
    """Round 2's sources after a round 1 whose results are `accuracies` (a fresh proposer each time)."""
    config = ProposerConfig(kind="evolutionary", seed=7, feedback=feedback_style)
    proposer = make_proposer(config)
    first = proposer.propose(build_feedback([], 1, config), 6, 1)
    feedback = build_feedback(_results(first, accuracies, statuses), 2, config)
    return [c.source for c in proposer.propose(feedback, 6, 2)]


def test_withheld_feedback_makes_round_two_independent_of_round_one_results():
    good_first = [0.9, 0.1, 0.1, 0.1, 0.1, 0.1]
    good_last = [0.1, 0.1, 0.1, 0.1, 0.1, 0.9]
    crashed = ["failed", "crashed", "done", "done", "done", "done"]
    outcomes = ((good_first, None), (good_last, None), (good_last, crashed))
    unguided = [_round_two("none", acc, statuses) for acc, statuses in outcomes]
    assert unguided[0] == unguided[1] == unguided[2]  # the results of round 1 changed nothing
    guided = [_round_two("rich", acc) for acc in (good_first, good_last)]
    assert guided[0] != guided[1]  # the same results do steer the guided proposer (the check above can fail)
    config = ProposerConfig(kind="evolutionary", seed=7, feedback="none")
    proposer = make_proposer(config)
    proposer.propose(build_feedback([], 1, config), 6, 1)
    fresh = proposer.propose(build_feedback([], 2, config), 6, 2)
    assert all("fresh random" in c.description for c in fresh)  # fresh genomes, no parents
    assert [c.source for c in fresh] == unguided[0]
    assert len({c.source for c in fresh}) == 6


def test_withheld_feedback_renders_as_withheld_and_holds_no_entries():
    config = ProposerConfig(feedback="none")
    proposer = make_proposer(ProposerConfig(kind="evolutionary"))
    entries = _results(proposer.propose(build_feedback([], 1), 2, 1), [0.5, 0.2])
    feedback = build_feedback(entries, 2, config)
    assert feedback.withheld and not feedback.entries and not feedback.ranked
    assert feedback.render() == WITHHELD_TEXT
    assert build_feedback(entries, 2, ProposerConfig()).ranked  # rich feedback shows them


def test_planted_decoys_come_first_in_round_one_then_the_proposer_alone():
    config = ProposerConfig(kind="evolutionary", seed=3, planted=tuple(str(p) for p in DECOYS))
    proposer = make_proposer(config)
    assert isinstance(proposer, PlantedProposer)
    feedback = build_feedback([], 1, config)
    batch = proposer.propose(feedback, 6, 1)
    assert [c.origin.proposer for c in batch] == [PLANTED] * 4 + ["evolutionary"] * 2
    assert {c.name for c in batch[:4]} == {"decoy_constant", "decoy_format_only", "decoy_length", "decoy_wrong_number"}
    again = proposer.propose(feedback, 2, 1)  # a replacement call of the round: the proposer's own
    assert [c.origin.proposer for c in again] == ["evolutionary"] * 2
    assert all(c.origin.proposer == "evolutionary" for c in proposer.propose(build_feedback([], 2, config), 3, 2))
    restored = make_proposer(config)
    restored.load_state(json.loads(json.dumps(proposer.state())))
    assert restored.offered == 4 and restored.propose(feedback, 1, 1)[0].origin.proposer == "evolutionary"


def test_planted_decoys_wait_for_room_when_the_round_asks_for_fewer():
    config = ProposerConfig(kind="evolutionary", planted=tuple(str(p) for p in DECOYS))
    proposer = make_proposer(config)
    feedback = build_feedback([], 1, config)
    first, second = proposer.propose(feedback, 3, 1), proposer.propose(feedback, 3, 1)
    assert [c.origin.proposer for c in first] == [PLANTED] * 3
    assert [c.origin.proposer for c in second] == [PLANTED, "evolutionary", "evolutionary"]


def test_a_planted_file_that_is_missing_is_a_config_error_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"proposer\.planted\[0\]: .*nothing\.py is not a file"):
        load_config(None, [f"proposer.planted=[{tmp_path / 'nothing.py'}]"])
    loaded = load_config(None, ["proposer.feedback=none", f"proposer.planted=[{DECOYS[0]}]"])
    assert loaded.proposer.feedback == "none" and loaded.proposer.planted == (str(DECOYS[0]),)


# --------------------------------------------------------------------------------------------------- statistics


def _row(arm, seed, round, name, dev, test=None, proposer="evolutionary", position=None, rank=None, **kw):
    return CandidateRow(
        arm=arm,
        seed=seed,
        round=round,
        name=name,
        candidate_id=f"{arm}{seed}{name}",
        proposer=proposer,
        status=kw.pop("status", "done"),
        dev_accuracy=dev,
        test_accuracy=test,
        trial_key=kw.pop("trial_key", f"{arm}{seed}{name}"),
        position=position,
        rank=rank,
        **kw,
    )


def test_rows_rank_by_the_one_rule_and_the_best_is_the_top_of_its_run():
    entries = [
        LeaderboardEntry("a", "alpha", 1, "evolutionary", "done", "x", accuracy=0.4, gold_logprob=-1.0),
        LeaderboardEntry("b", "beta", 1, PLANTED, "done", "y", accuracy=0.6, gold_logprob=-2.0),
        LeaderboardEntry("c", "gamma", 2, "evolutionary", "done", "z", accuracy=0.4, gold_logprob=-1.0),
        LeaderboardEntry("d", "delta", 1, PLANTED, "rejected", "w", reasons=["probe: uninformative"]),
    ]
    rows = rows_from_entries("guided", 0, entries, test_accuracy={"a": 0.3, "b": 0.5})
    by_name = {r.name: r for r in rows}
    assert by_name["beta"].rank == "1" and by_name["alpha"].rank == "=2" and by_name["gamma"].rank == "=2"
    assert by_name["delta"].rank is None and by_name["delta"].reasons == ("probe: uninformative",)
    assert by_name["alpha"].test_accuracy == 0.3 and by_name["gamma"].test_accuracy is None
    best = best_row(rows)
    assert best.name == "beta" and best.planted  # what the search would hand over, decoy or not
    table = decoy_table(rows)
    assert table[0]["decoy"] == "beta" and table[0]["rank"] == "1" and table[0]["of"] == 3
    assert table[1] == {"decoy": "delta", "arm": "guided", "seed": 0, "status": "rejected",
                        "reasons": ["probe: uninformative"]}  # fmt: skip


def test_round_curves_pool_candidates_for_the_mean_and_seeds_for_the_best():
    rows = [
        _row("guided", 0, 1, "a", 0.2),
        _row("guided", 0, 1, "b", 0.4),
        _row("guided", 1, 1, "c", 0.6),
        _row("guided", 0, 2, "d", 0.3),
        _row("guided", 1, 2, "e", 0.8),
        _row("guided", 0, 1, "decoy", 0.99, proposer=PLANTED),  # not the proposer's: left out
        _row("guided", 1, 2, "rejected", None, status="rejected"),
    ]
    curves = round_curves(rows)["guided"]
    assert [p["round"] for p in curves] == [1, 2]
    one, two = curves
    assert one["candidates"] == 3 and one["mean"]["estimate"] == pytest.approx(0.4)
    assert one["best"]["estimate"] == pytest.approx((0.4 + 0.6) / 2) and one["best"]["n"] == 2
    assert two["best_so_far"]["estimate"] == pytest.approx((0.4 + 0.8) / 2)
    low, high = one["mean"]["low"], one["mean"]["high"]
    assert 0.2 <= low < 0.4 < high <= 0.6


def test_mean_ci_agrees_with_scipy_and_is_empty_for_one_value():
    values = [0.1, 0.5, 0.3, 0.7, 0.2, 0.4]
    ours = mean_ci(values, seed=3, resamples=2000)
    theirs = sps.bootstrap(
        (np.array(values),), np.mean, n_resamples=2000, method="percentile", rng=np.random.default_rng(3)
    ).confidence_interval
    assert ours["estimate"] == pytest.approx(np.mean(values))
    assert (ours["low"], ours["high"]) == pytest.approx((theirs.low, theirs.high))
    assert mean_ci([0.5]) == {"n": 1, "estimate": 0.5, "low": None, "high": None}
    assert mean_ci([0.5, 0.5]) == {"n": 2, "estimate": 0.5, "low": 0.5, "high": 0.5}


def test_guided_against_unguided_pairs_seeds_and_takes_each_runs_best():
    rows = []
    for seed, (g_dev, g_test, u_dev, u_test) in enumerate([(0.6, 0.5, 0.4, 0.45), (0.7, 0.6, 0.5, 0.5),
                                                             (0.5, 0.4, 0.5, 0.42)]):  # fmt: skip
        rows += [
            _row("guided", seed, 2, "best", g_dev, g_test, position=0, rank="1"),
            _row("guided", seed, 1, "worse", g_dev - 0.2, 0.99, position=1, rank="2"),  # test not what selects
            _row("unguided", seed, 2, "best", u_dev, u_test, position=0, rank="1"),
        ]
    comparison = arm_comparison(rows, "guided", "unguided")
    dev, test = comparison["best_dev_accuracy"], comparison["best_test_accuracy"]
    assert dev["seeds"] == [0, 1, 2] and dev["differences"] == pytest.approx([0.2, 0.2, 0.0])
    assert dev["estimate"] == pytest.approx(0.4 / 3) and dev["low"] <= dev["estimate"] <= dev["high"]
    assert test["differences"] == pytest.approx([0.05, 0.1, -0.02])
    assert dev["verdict"] == "no difference shown (95% CI includes 0)"  # 0.2, 0.2, 0.0: resamples of all 0.0
    gaps = control_gaps(rows, "guided", {"baseline": 0.3, "untrained": None})
    assert list(gaps) == ["baseline"] and gaps["baseline"]["estimate"] == pytest.approx(0.5 - 0.3)
    assert gaps["baseline"]["verdict"] == "guided better (95% CI above 0)"


def test_verdicts_need_an_interval_and_read_its_side():
    names = ("guided", "unguided")
    assert verdict({"estimate": 0.1, "low": None, "high": None, "n": 1}, names).startswith("no interval from 1")
    assert verdict({"estimate": -0.1, "low": -0.2, "high": -0.05}, names) == "unguided better (95% CI below 0)"
    assert verdict({"estimate": None}, names) == "no paired values"


def _records(correct, ids=None, flexible=None):
    ids = list(range(len(correct))) if ids is None else ids
    return pd.DataFrame({"index": ids, "correct": correct, "correct_flexible": flexible or correct})


def test_paired_test_pairs_by_question_id_and_matches_mcnemar():
    best = [True] * 12 + [False] * 8
    base = [False] * 9 + [True] * 3 + [False] * 6 + [True] * 2  # b = 9 (only best right), c = 2
    result = paired_test(_records(best), _records(base), ("best", "baseline"))
    assert (result["mcnemar"]["b"], result["mcnemar"]["c"]) == (9, 2)
    from statsmodels.stats.contingency_tables import mcnemar

    assert result["mcnemar"]["p_value"] == pytest.approx(mcnemar([[3, 9], [2, 6]], exact=True).pvalue)
    assert result["difference"] == pytest.approx(0.6 - 0.25)
    assert result["ci_low"] < result["difference"] < result["ci_high"]
    order = list(range(20))
    random.Random(1).shuffle(order)
    shuffled = _records([base[i] for i in order], ids=order)
    assert paired_test(_records(best), shuffled, ("best", "baseline"))["mcnemar"] == result["mcnemar"]
    with pytest.raises(ValueError, match="cover different questions"):
        paired_test(_records(best), _records(base, ids=list(range(1, 21))), ("best", "baseline"))


def test_dev_test_correlation_is_spearman_over_distinct_trials():
    dev = [0.1, 0.3, 0.2, 0.5, 0.4]
    test = [0.15, 0.2, 0.3, 0.45, 0.5]
    rows = [_row("guided", 0, 1, f"c{i}", d, t) for i, (d, t) in enumerate(zip(dev, test, strict=True))]
    rows.append(_row("unguided", 0, 1, "c0", 0.1, 0.15, trial_key="guided0c0"))  # the same trial: counted once
    result = dev_test_correlation(rows)
    assert result["n"] == 5 and result["rho"] == pytest.approx(sps.spearmanr(dev, test).statistic)
    flat = dev_test_correlation([_row("g", 0, 1, f"c{i}", 0.0, 0.0) for i in range(4)])
    assert flat["rho"] is None and "same for every candidate" in flat["note"]
    assert dev_test_correlation(rows[:2])["rho"] is None


# --------------------------------------------------------------------------------------------------- the script


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _sums(start: int, count: int) -> list[dict]:
    rng = random.Random(start)
    pairs = [(rng.randint(10, 99), rng.randint(10, 99)) for _ in range(count * 3)]
    unique = list(dict.fromkeys(pairs))[:count]
    return [{"question": f"What is {a} + {b}?", "answer": a + b, "solution": f"{a} + {b} = {a + b}"} for a, b in unique]


@pytest.fixture
def task(tmp_path) -> dict[str, Path]:
    rows = _sums(0, 90)
    return {
        "train": _write(tmp_path / "train.jsonl", rows[:60]),
        "dev": _write(tmp_path / "dev.jsonl", rows[60:75]),
        "test": _write(tmp_path / "test.jsonl", rows[75:90]),
    }


def _bench(tmp_path: Path, train: Path, dev: Path, test: Path, *extra: str, timeout: int = 120):
    command = [sys.executable, str(SCRIPT), "--task", str(train), "--dev", str(dev), "--test", str(test), "--smoke"]
    command += ["--work", str(tmp_path / "work"), "--out", str(tmp_path / "out" / "sq.json"), *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO)


@pytest.mark.slow
@pytest.mark.parametrize(
    "case, pattern",
    [
        ("words", r"train\.jsonl:2: field \"answer\" must be a number"),
        ("few", r"dev\.jsonl: the dev split has 2 questions; the benchmark needs at least 4"),
        ("overlap", r"dev\.jsonl: 1 of its 15 questions also occur in .*test\.jsonl.*must not overlap test"),
    ],
)
def test_a_task_the_benchmark_cannot_use_stops_it_in_one_line_before_ray(tmp_path, task, case, pattern):
    if case == "words":
        rows = [json.loads(line) for line in task["train"].read_text().splitlines()]
        rows[1]["answer"] = "forty"
        _write(task["train"], rows)
    elif case == "few":
        _write(task["dev"], [json.loads(line) for line in task["dev"].read_text().splitlines()][:2])
    else:
        dev = [json.loads(line) for line in task["dev"].read_text().splitlines()]
        dev[3] = json.loads(task["test"].read_text().splitlines()[5])
        _write(task["dev"], dev)
    started = time.perf_counter()
    done = _bench(tmp_path, task["train"], task["dev"], task["test"])
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("search_quality.py: error: "), done.stderr
    assert __import__("re").search(pattern, lines[0]), lines[0]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "work" / "guided-s0").exists()  # stopped before any run (and so before Ray)
    assert time.perf_counter() - started < 60


@pytest.mark.slow
def test_smoke_benchmark_runs_every_arm_through_the_real_search(tmp_path, task):
    done = _bench(tmp_path, task["train"], task["dev"], task["test"], timeout=540)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "sq.json").read_text())
    assert (tmp_path / "out" / "sq.png").stat().st_size > 10_000
    assert report["arms"] == ["guided", "unguided"] and report["mode"] == "smoke"
    assert [r["run"] for r in report["runs"]] == ["guided-s0", "unguided-s0"]
    decoys = {(d["decoy"], d["arm"]): d for d in report["decoys"]}
    assert len(decoys) == 8  # the four decoys in each search arm
    for arm in ("guided", "unguided"):
        assert decoys[("decoy_constant", arm)]["status"] == "rejected"
        assert "uninformative" in decoys[("decoy_constant", arm)]["reasons"][0]
        assert "anti-correct" in decoys[("decoy_wrong_number", arm)]["reasons"][0]
        for screened in ("decoy_length", "decoy_format_only"):
            assert decoys[(screened, arm)]["status"] == "done" and decoys[(screened, arm)]["of"] == 3
    own = [c for c in report["candidates"] if not c["planted"]]
    assert own and all(c["status"] == "done" and c["test_accuracy"] is not None for c in own)
    assert set(report["controls"]) == {"baseline", "untrained"}
    assert all(c["test_n"] == 4 for c in report["controls"].values())
    pairs = {(b["arm"], b["against"]): b for b in report["best_vs_controls"]}
    assert set(pairs) == {(a, c) for a in ("guided", "unguided") for c in ("baseline", "untrained")}
    assert all(b["n"] == 4 and 0.0 <= b["mcnemar"]["p_value"] <= 1.0 for b in pairs.values())
    assert report["arm_comparisons"][0]["best_dev_accuracy"]["seeds"] == [0]
    assert report["round_curves"]["guided"][0]["candidates"] == 1
    trials = {c["trial_key"] for c in report["candidates"] if c["trial_key"]}
    assert len(trials) == 3  # unguided's round 1 is guided's: the same trials, trained once
    feedback = (tmp_path / "work" / "unguided-s0" / "config.yaml").read_text()
    assert "feedback: none" in feedback
