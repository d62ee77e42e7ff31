"""The learning signal of screening runs and the graded selection signal (gold log-probability), on the tiny model."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from reward_search.analysis.signal import paired_signal_difference
from reward_search.candidates.candidate import RewardCandidate
from reward_search.config import load_config
from reward_search.task import get_task
from reward_search.training.gold_logprob import gold_logprobs, gold_text
from reward_search.training.signal import ADVANTAGE_KEY, LORA_B_KEY, learning_signal
from reward_search.training.spec import RewardSpec

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "experiments" / "smoke.yaml"

CONSTANT = """
def same_for_all(prompts, completions, **kwargs):
    return [1.0 for _ in completions]
"""
GRADED = """
def longer_is_better(prompts, completions, **kwargs):
    return [len(str(c)) / 10.0 for c in completions]
"""


def test_the_verdict_from_curve_rows():
    tied = [{"frac_reward_zero_std": 1.0, ADVANTAGE_KEY: 0.0, LORA_B_KEY: 0.0} for _ in range(4)]
    verdict = learning_signal(tied)
    assert verdict["tied_step_share"] == 1.0
    assert "gave every completion in a group the same score" in verdict["no_signal"]
    moving = [{"frac_reward_zero_std": 0.5, ADVANTAGE_KEY: 0.7, LORA_B_KEY: 0.01 * s} for s in range(1, 5)]
    verdict = learning_signal(moving)
    assert verdict["no_signal"] is None and verdict["adapter_norm"] == pytest.approx(0.04)
    still = [{"frac_reward_zero_std": 0.0, ADVANTAGE_KEY: 0.5, LORA_B_KEY: 0.0}]
    assert "adapter never moved" in learning_signal(still)["no_signal"]
    # the base rewards varied, the candidate's own reward did not: the run learned, but not from the candidate
    base_only = [{**row, "rewards/mine/std": 0.0, "rewards/check_answer/std": 0.4} for row in moving]
    verdict = learning_signal(base_only, own=["mine"])
    assert verdict["own_flat_step_share"] == 1.0 and "only the base rewards taught this run" in verdict["no_signal"]
    mixed = [{**row, "rewards/mine/std": 0.0 if i else 0.3} for i, row in enumerate(moving)]  # flat in 3 of 4
    assert learning_signal(mixed, own=["mine"])["own_flat_step_share"] == 0.75
    varied = [{**row, "rewards/mine/std": 0.2} for row in moving]
    assert learning_signal(varied, own=["mine"])["no_signal"] is None


@pytest.mark.slow
def test_a_zero_variance_reward_is_flagged_and_a_graded_one_is_not(tmp_path):
    from reward_search.training.screening import run_screening

    config = load_config(SMOKE, ["training.steps=2", "training.base_rewards=false"])
    flat = run_screening(
        config, RewardSpec((RewardCandidate.from_source(CONSTANT),), base_rewards=False), tmp_path / "c"
    )
    graded = run_screening(
        config, RewardSpec((RewardCandidate.from_source(GRADED),), base_rewards=False), tmp_path / "g"
    )
    assert flat.status == graded.status == "done", (flat.error, graded.error)
    flat_signal, graded_signal = flat.curve_summary["signal"], graded.curve_summary["signal"]
    assert flat_signal["tied_step_share"] == 1.0 and flat_signal["adapter_norm"] == 0.0
    assert flat_signal["mean_abs_advantage"] == 0.0
    assert "same score" in flat_signal["no_signal"]
    assert graded_signal["no_signal"] is None
    assert graded_signal["adapter_norm"] > 1e-4 and graded_signal["mean_abs_advantage"] > 0.1
    # the graded base reward gives the flat candidate's run a gradient, and the verdict still names the candidate
    with_base = load_config(SMOKE, ["training.steps=2", "training.graded_base_reward=true"])
    helped = run_screening(with_base, RewardSpec((RewardCandidate.from_source(CONSTANT),)), tmp_path / "b")
    assert helped.status == "done", helped.error
    assert "reward/graded_answer" in helped.curve_summary
    helped_signal = helped.curve_summary["signal"]
    assert helped_signal["adapter_norm"] > 1e-4 and helped_signal["tied_step_share"] < 1.0
    assert "only the base rewards taught this run" in helped_signal["no_signal"]
    rows = pq.read_table(tmp_path / "g" / "curves.parquet").to_pylist()
    assert all(r[LORA_B_KEY] > 0 for r in rows)  # recorded per step, growing from zero

    # the graded selection signal: one finite value per selection question, and the trained adapter moved it
    records = pq.read_table(tmp_path / "g" / "selection.parquet").to_pylist()
    base_records = pq.read_table(tmp_path / "c" / "selection.parquet").to_pylist()  # unmoved adapter = base model
    assert len(records) == config.training.selection_size
    assert all(math.isfinite(r["gold_logprob"]) and r["gold_logprob"] < 0 for r in records)
    assert graded.metrics["gold_logprob"] == pytest.approx(np.mean([r["gold_logprob"] for r in records]))
    moved = [r["gold_logprob"] - b["gold_logprob"] for r, b in zip(records, base_records, strict=True)]
    assert any(abs(d) > 1e-6 for d in moved)


def test_gold_logprob_is_per_question_batch_independent_and_paired(tiny):
    task = get_task(load_config(SMOKE).data)
    problems = task.load_splits().dev[:6]
    text = gold_text(problems[0])
    assert text.startswith("<thinking>\n") and text.endswith(f"<solution>{problems[0].answer}</solution>")
    assert "<<" not in text and "####" not in text
    batched = gold_logprobs(tiny, task, problems, batch_size=4)
    single = gold_logprobs(tiny, task, problems, batch_size=1)
    assert len(batched) == 6 and all(math.isfinite(v) and v < 0 for v in batched)
    assert np.allclose(batched, single, atol=1e-4)  # left padding with explicit positions changes nothing
    assert len(set(batched)) == 6  # a value per question, not one shared number

    other = [v + 0.1 * i for i, v in enumerate(batched)]
    diff = paired_signal_difference(other, batched, names=("other", "base"), n_resamples=2000)
    assert diff.difference == pytest.approx(diff.first_mean - diff.second_mean)
    assert diff.difference == pytest.approx(np.mean(other) - np.mean(batched))
    assert diff.low <= diff.difference <= diff.high


def test_the_report_pairs_each_job_with_the_baseline_and_summarises_in_three_lines(tmp_path):
    from reward_search import io
    from reward_search.analysis.rundata import RunData
    from reward_search.analysis.signal_section import job_signals, signal_section, summary_lines
    from reward_search.candidates.records import LeaderboardEntry
    from reward_search.config import ExperimentConfig

    rng = np.random.default_rng(0)
    dev, test = rng.normal(-1.5, 0.2, 30), rng.normal(-1.5, 0.2, 20)
    shifts = {"baseline": 0.0, "top3": 0.05, "top5": 0.02, "random": -0.01}  # two top_k jobs: found by name
    jobs = []
    for name, shift in shifts.items():
        folder = tmp_path / "trials" / name
        on_test = [{"index": i, "correct": False, "gold_logprob": float(v + 2 * shift)} for i, v in enumerate(test)]
        kind = {"top3": "top_k", "top5": "top_k"}.get(name, name)
        if kind in ("baseline", "random"):  # finalize.controls_on_dev false: one evaluation, on test
            io.write_parquet(folder / "selection.parquet", on_test)
            split = "test"
        else:  # dev indices overlap the test ones: only records of one split may ever be paired
            rows = [{"index": i, "correct": False, "gold_logprob": float(v + shift)} for i, v in enumerate(dev)]
            io.write_parquet(folder / "selection.parquet", rows[::-1])  # order on disk must not matter
            io.write_parquet(folder / "test.parquet", on_test)
            split = "dev"
        result = {"status": "done", "trial_key": name, "trial_dir": str(folder), "selection_split": split}
        jobs.append({"name": name, "kind": kind, "members": [], "result": result})
    entry = LeaderboardEntry("c1", "reward_a", 1, "test", "done", "src", accuracy=0.0, gold_logprob=-1.4, n=30)
    data = RunData(tmp_path, ExperimentConfig(), {}, {}, [entry], {"jobs": jobs, "best_recipe": "top3"})
    on_dev = {s.job.name: s for s in job_signals(data, n_resamples=2000)}
    assert set(on_dev) == {"top3", "top5"} and on_dev["top3"].versus_baseline is None  # no baseline on dev
    signals = {s.job.name: s for s in job_signals(data, "test", n_resamples=2000)}
    assert signals["baseline"].versus_baseline is None
    assert signals["top3"].versus_baseline.difference == pytest.approx(0.1)
    assert signals["top3"].versus_baseline.low == pytest.approx(0.1) == signals["top3"].versus_baseline.high
    assert signals["random"].versus_baseline.difference == pytest.approx(-0.02)
    assert signals["random"].versus_baseline.n == 20
    assert signal_section(data, 2000, 0).blocks[-1].rows[0][0] == "top3"  # dev rows first, then test
    lines = summary_lines(data, 2000)
    assert len(lines) == 3 and lines[0].startswith("best reward: reward_a")
    assert "+0.1000" in lines[1] and "top3" in lines[1] and "-0.0200" in lines[2] and "random control" in lines[2]
    assert "over 20 test questions" in lines[1]
