"""The finalize phase: recipe planning (pure) and a real small run on the smoke preset, resumed without retraining."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import ray

from reward_search.candidates.candidate import RewardCandidate
from reward_search.candidates.records import LeaderboardEntry
from reward_search.config import RecipeConfig, load_config
from reward_search.search.finalize import (
    FinalJob,
    _share_results,
    group_jobs,
    job_config,
    job_identity,
    plan_jobs,
    probe_discrimination,
    recipe_members,
)
from reward_search.testing.local_ray import start_local_ray

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "experiments" / "smoke.yaml"


def entry(i: int, round: int, accuracy: float, gap: float = 0.0, name: str | None = None) -> LeaderboardEntry:
    source = f"def r{i}(prompts, completions, **kw):\n    return [{i}.0 for _ in completions]\n"
    return LeaderboardEntry(
        candidate_id=f"{i:016x}",
        name=name or f"r{i}",
        round=round,
        proposer="evolutionary",
        status="done",
        source=source,
        accuracy=accuracy,
        f1=2 * accuracy / (1 + accuracy),
        probe={"score_min": 0.0, "score_max": 1.0, "mean_correct": 0.5 + gap / 2, "mean_wrong": 0.5 - gap / 2},
    )


def member(e: LeaderboardEntry) -> RewardCandidate:
    """The planning tests' member loader (a run loads each member's validation record: `stored_members`)."""
    return RewardCandidate(name=e.name, source=e.source, status="accepted", probe=e.probe)


def ranked(entries):
    return sorted(entries, key=lambda e: -e.accuracy)


def test_recipes_choose_the_right_members():
    board = ranked(
        [
            entry(1, 1, 0.5, 0.1),
            entry(2, 1, 0.4, 0.9),
            entry(3, 2, 0.45, 0.5),
            entry(4, 2, 0.3, 0.8),
            entry(5, 3, 0.2, 0.0),
            entry(6, 3, 0.6, 0.2, name="r1"),
        ]
    )
    top = recipe_members(RecipeConfig("top3", "top_k", 3), board)
    assert [e.name for e in top] == ["r1", "r3", "r2"]  # the second "r1" (a name TRL would log twice) is skipped
    diverse = recipe_members(RecipeConfig("diverse", "diverse", 5), board)
    # the best of each round, rounds in order; round 3's best is dropped because it shares round 1's name
    assert [(e.round, e.name) for e in diverse] == [(1, "r1"), (2, "r3")]
    correctness = recipe_members(RecipeConfig("c", "correctness", 2), board)
    assert [e.name for e in correctness] == ["r2", "r4"]  # most discriminating among the top 2k
    assert probe_discrimination(board[0]) == pytest.approx(0.2)


def test_plan_has_recipes_baseline_and_a_seeded_random_control():
    config = load_config(SMOKE, ["finalize.random_k=2", "finalize.random_seed=5", "finalize.steps=7"])
    board = ranked([entry(i, 1 + i % 2, 0.1 * i) for i in range(1, 7)])
    jobs = plan_jobs(config, board, board, member)
    names = [j.name for j in jobs]
    assert names[-2:] == ["baseline", "random"] and "top3" in names and "top5_full" in names
    baseline = jobs[names.index("baseline")]
    assert baseline.spec.candidates == () and baseline.spec.base_rewards
    again = plan_jobs(config, board, list(reversed(board)), member)
    assert jobs[-1].member_ids == again[-1].member_ids and len(jobs[-1].member_ids) == 2  # seeded, order-free
    full = jobs[names.index("top5_full")]
    assert full.steps == config.training.steps and jobs[names.index("top5")].steps == 7
    trained = job_config(config, jobs[names.index("top3")])
    assert trained.training.eval_test and trained.training.steps == 7 and trained.run.seed == config.run.seed


@pytest.mark.slow
def test_finalize_after_a_small_search_and_resume(tmp_path, monkeypatch, capsys):
    from reward_search.search import untrained
    from reward_search.search.driver import finalize_only, run_search
    from reward_search.search.leaderboard import load_entries

    monkeypatch.setattr(untrained, "user_cache_dir", lambda fp: tmp_path / "cache" / fp)  # not the session's cache
    if ray.is_initialized():
        ray.shutdown()
    start_local_ray()
    config = load_config(
        SMOKE,
        [
            f"run.storage_path={tmp_path}",
            "run.name=fin",
            "search.rounds=1",
            "search.candidates_per_round=2",
            "finalize.recipes=[{name: top2, kind: top_k, k: 2}, {name: correct1, kind: correctness, k: 1}, "
            "{name: top2_again, kind: top_k, k: 2}]",
            "finalize.random_k=2",
            "finalize.seeds=2",
            "finalize.controls_on_dev=false",
        ],
    )
    try:
        run_search(config, verbose=False)
    finally:
        ray.shutdown()
    run_dir = tmp_path / "fin"
    outcome = json.loads((run_dir / "finalize.json").read_text())
    jobs = {job["name"]: job for job in outcome["jobs"]}
    best = outcome["best_recipe"]
    assert set(jobs) == {
        "top2",
        "top2_again",
        "correct1",
        "baseline",
        "random",
        f"{best}@seed3407",
        f"{best}@seed3408",
        "untrained",
    }
    # an identical recipe is trained once and reported under both labels
    assert jobs["top2_again"]["result"]["same_job_as"] == "top2"
    assert jobs["top2_again"]["result"]["trial_key"] == jobs["top2"]["result"]["trial_key"]
    trials = [d for d in (run_dir / "tune").glob("finalize-recipes-*/*") if d.is_dir()]
    assert (
        len([d for d in trials if "top2_again" in d.name]) == 0 and len([d for d in trials if "-top2-" in d.name]) == 1
    )
    assert jobs[f"{best}@seed3407"]["result"]["same_job_as"] == best
    assert all(j["result"]["member_failures"] == {} for n, j in jobs.items() if n != "untrained")  # none failed
    for job in (j for n, j in jobs.items() if n != "untrained"):  # the untrained row: _check_untrained
        result = job["result"]
        assert result["status"] == "done", (job["name"], result)
        assert result["test_n"] == 100  # every job tested once, on all of test
        if job["name"] in ("baseline", "random"):  # controls_on_dev false: test only, no dev numbers
            assert result["selection_split"] == "test" and result["selection_n"] is None
            assert result["test_gold_logprob"] is not None
            assert len(pd.read_parquet(Path(result["trial_dir"]) / "selection.parquet")) == 100
            assert not (Path(result["trial_dir"]) / "test.parquet").exists()
        else:
            assert result["selection_n"] == 4 and result["selection_split"] == "dev"
            assert (Path(result["trial_dir"]) / "test.parquet").is_file()
    assert jobs[f"{best}@seed3407"]["result"]["trial_key"] == jobs[best]["result"]["trial_key"]  # same training
    assert jobs[f"{best}@seed3408"]["result"]["trial_key"] != jobs[best]["result"]["trial_key"]
    for e in load_entries(run_dir):  # the search itself never touched test
        if e.status == "done":
            assert not (Path(e.trial_dir) / "test.parquet").exists()

    untrained_test = _check_untrained(run_dir, jobs["untrained"], tmp_path / "cache")
    stamps = {
        n: (Path(j["result"]["trial_dir"]) / "curves.parquet").stat().st_mtime_ns
        for n, j in jobs.items()
        if n != "untrained"
    }
    stamps["untrained"] = untrained_test.stat().st_mtime_ns
    start_local_ray()
    try:
        again = finalize_only(config, run_dir)
    finally:
        ray.shutdown()
    for job in again["jobs"]:
        assert job["result"]["cached"], job["name"]  # resumed: nothing retrained, the untrained row not re-evaluated
        written = Path(job["result"]["trial_dir"]) / (
            "test.parquet" if job["kind"] == "untrained" else "curves.parquet"
        )
        assert written.stat().st_mtime_ns == stamps[job["name"]]
    assert next(j for j in again["jobs"] if j["kind"] == "untrained")["result"]["source"] == "run directory"
    _check_untrained_reported(run_dir, capsys)


def _check_untrained(run_dir: Path, job: dict, cache: Path) -> Path:
    """The untrained row of a first finalize: evaluated (strict, flexible, gold log-prob) on all of test, and only
    there (controls_on_dev false, as the baseline), with per-question records in the run directory and a copy in the
    user cache; its test records' path."""
    result = job["result"]
    assert result["status"] == "done", result
    assert (job["kind"], job["members"], result["source"], result["cached"]) == ("untrained", [], "evaluated", False)
    assert (result["test_n"], result["selection_n"], result["selection_split"]) == (100, None, "test")
    for key in ("accuracy", "flexible_accuracy", "gold_logprob"):
        assert isinstance(result[f"test_{key}"], float), key
    folder = run_dir / "untrained" / result["fingerprint"]
    assert Path(result["trial_dir"]) == folder and result["eval_seconds"] > 0
    test = pd.read_parquet(folder / "test.parquet")
    assert len(test) == 100 and {"index", "correct_strict", "correct_flexible", "gold_logprob"} <= set(test)
    assert test["correct_strict"].mean() == result["test_accuracy"]
    assert test["correct_flexible"].mean() == result["test_flexible_accuracy"]
    assert len(pd.read_parquet(folder / "selection.parquet")) == 100  # test, as a control's selection records
    assert (
        json.loads((cache / result["fingerprint"] / "result.json").read_text())["fingerprint"] == result["fingerprint"]
    )
    print(f"untrained evaluation on the smoke preset: {result['eval_seconds']:.1f} s")  # shown with -s
    return folder / "test.parquet"


def _check_untrained_reported(run_dir: Path, capsys: pytest.CaptureFixture) -> None:
    """The report's tables and the status command show the untrained row; the demo's summary has its line."""
    from reward_search.cli import main

    capsys.readouterr()
    assert main(["report", str(run_dir), "--resamples", "200"]) == 0
    summary = capsys.readouterr().out
    assert "untrained model: test accuracy strict " in summary and "against it (strict, paired 95% CI)" in summary
    markdown = (run_dir / "report" / "report.md").read_text(encoding="utf-8")
    assert "| untrained | untrained | no training |" in markdown  # the ensembles table, beside the baseline
    assert (
        "Against the baseline and the untrained model" in markdown and "| baseline | untrained | flexible |" in markdown
    )
    assert (run_dir / "report" / "figures" / "controls.png").is_file()
    assert main(["status", str(run_dir)]) == 0
    status = capsys.readouterr().out
    assert "untrained (no training): test strict " in status and "(fingerprint " in status


def test_identity_is_what_makes_a_job_different_never_its_label():
    board = ranked([entry(i, 1, 0.1 * i) for i in range(1, 7)])
    same_steps = load_config(SMOKE)  # finalize.steps unset: top5 trains training.steps, like top5_full
    jobs = {j.name: j for j in plan_jobs(same_steps, board, board, member)}
    assert job_identity(same_steps, jobs["top5"]) == job_identity(same_steps, jobs["top5_full"])
    assert job_identity(same_steps, jobs["top5"]) != job_identity(same_steps, jobs["top3"])
    shorter = load_config(SMOKE, ["finalize.steps=1"])
    jobs2 = {j.name: j for j in plan_jobs(shorter, board, board, member)}
    assert job_identity(shorter, jobs2["top5"]) != job_identity(shorter, jobs2["top5_full"])
    reseeded = FinalJob(
        "x", "seed", jobs["top5"].members, jobs["top5"].member_ids, jobs["top5"].steps, 9, jobs["top5"].spec
    )
    assert job_identity(same_steps, reseeded) != job_identity(same_steps, jobs["top5"])
    assert job_config(same_steps, jobs["top5"]).training.member_failure == "zero"


def test_identical_jobs_run_once_and_are_reported_under_each_label():
    # 12 candidates: every recipe differs except top5 and top5_full (same members, same steps)
    board = ranked([entry(i, 1, 0.05 * i, gap=0.05 * (12 - i)) for i in range(1, 13)])
    config = load_config(SMOKE)
    jobs = plan_jobs(config, board, board, member)
    known: dict = {}
    to_run, groups = group_jobs(config, jobs, known)
    names = [j.name for j in to_run]
    assert "top5" in names and "top5_full" not in names and len(to_run) == len(jobs) - 1
    for job in to_run:  # what the Tune trials would attach
        job.result = {"status": "done", "trial_key": f"key-{job.name}"}
    _share_results(groups, known)
    by_name = {j.name: j for j in jobs}
    assert by_name["top5_full"].result == {"status": "done", "trial_key": "key-top5", "same_job_as": "top5"}
    assert "same_job_as" not in by_name["top5"].result
    # a later phase with the same identity (the first seed re-run) reuses the result instead of training again
    again = FinalJob(
        "top5@seed3407",
        "seed",
        by_name["top5"].members,
        by_name["top5"].member_ids,
        by_name["top5"].steps,
        config.run.seed,
        by_name["top5"].spec,
    )
    to_run2, groups2 = group_jobs(config, [again], known)
    assert to_run2 == []
    _share_results(groups2, known)
    assert again.result["same_job_as"] == "top5" and again.result["trial_key"] == "key-top5"


FLAKY_MEMBER = (
    "def flaky_member(prompts, completions, **kwargs):\n"
    "    if completions[0] == 'boom':\n"
    "        raise ValueError('boom')\n"
    "    if completions[0] == 'hang':\n"
    "        while True:\n"
    "            pass\n"
    "    return [1.0 for _ in completions]\n"
)


def test_a_failing_ensemble_member_scores_zero_is_recorded_and_its_worker_restarts():
    """The real sandbox: an exception and a timeout each score 0 for their batch, never end the job (even past
    candidates.max_failed_calls), and the member's worker is started afresh for the next batch."""
    from reward_search.candidates.candidate import RewardCandidate
    from reward_search.candidates.settings import CandidatesConfig, SandboxConfig
    from reward_search.training.member_rewards import ZeroOnFailureReward

    config = CandidatesConfig(sandbox=SandboxConfig(call_timeout_s=1.0), max_failed_calls=1)
    reward = ZeroOnFailureReward(RewardCandidate.from_source(FLAKY_MEMBER), config)
    try:
        assert reward(["q"], ["fine"]) == [1.0]
        assert reward(["q", "q"], ["boom", "x"]) == [0.0, 0.0]
        assert reward(["q"], ["hang"]) == [0.0]  # timed out: the worker was killed
        assert reward(["q", "q"], ["fine", "again"]) == [1.0, 1.0]  # a fresh worker answers
        assert reward._runner is not None and reward._runner.starts == 1  # a fresh runner since the last failure
        assert reward.restarts == 2
        assert [f["call"] for f in reward.failures] == [2, 3]
        assert "boom" in reward.failures[0]["error"] and reward.failures[1]["error"].startswith("timeout")
        metrics = reward.metrics()
        assert metrics["sandbox/flaky_member/zeroed_calls"] == 2.0 and metrics["sandbox/flaky_member/calls"] == 4.0
        assert metrics["sandbox/flaky_member/restarts"] == 2.0
    finally:
        reward.close()


def test_finalize_jobs_build_zero_on_failure_members():
    from reward_search.candidates.rewards import SandboxedReward
    from reward_search.training.member_rewards import ZeroOnFailureReward
    from reward_search.training.trainer import build_reward_funcs

    board = ranked([entry(i, 1, 0.1 * i) for i in range(1, 4)])
    config = load_config(SMOKE)
    job = next(j for j in plan_jobs(config, board, board, member) if j.name == "top3")
    funcs, _ = build_reward_funcs(job_config(config, job), job.spec)
    members = [f for f in funcs if isinstance(f, SandboxedReward)]
    assert len(members) == 3 and all(isinstance(f, ZeroOnFailureReward) for f in members)
    screening, _ = build_reward_funcs(config, job.spec)  # a screening trial keeps crash-on-repeated-failure
    assert not any(isinstance(f, ZeroOnFailureReward) for f in screening)


def test_controls_can_skip_the_dev_evaluation_and_recipes_never_do():
    board = ranked([entry(i, 1, 0.1 * i) for i in range(1, 7)])
    config = load_config(SMOKE, ["finalize.controls_on_dev=false", "training.test_size=30"])
    jobs = {j.name: j for j in plan_jobs(config, board, board, member)}
    for name in ("baseline", "random"):
        training = job_config(config, jobs[name]).training
        assert (training.selection_split, training.selection_size) == ("test", 30)
    assert job_config(config, jobs["top3"]).training.selection_split == "dev"
    default = load_config(SMOKE)
    assert default.finalize.controls_on_dev
    assert job_config(default, plan_jobs(default, board, board, member)[-1]).training.selection_split == "dev"


def test_a_job_ranked_on_test_reports_its_selection_numbers_as_test_and_the_table_marks_twins():
    from reward_search.search.finalize import _test_from_selection, finalize_table

    on_test = {"selection_split": "test", "selection_accuracy": 0.5, "selection_f1": 2 / 3, "selection_n": 8}
    assert _test_from_selection(dict(on_test))["test_accuracy"] == 0.5
    on_dev = {"selection_split": "dev", "selection_accuracy": 0.5, "test_accuracy": None}
    assert _test_from_selection(dict(on_dev))["test_accuracy"] is None  # dev runs keep test apart
    control = _test_from_selection(dict(on_test, selection_gold_logprob=-1.5), control=True)
    assert (control["test_accuracy"], control["test_gold_logprob"]) == (0.5, -1.5)
    assert control["selection_accuracy"] is None and control["selection_n"] is None  # not shown as dev numbers
    outcome = {
        "selection_split": "test",
        "best_recipe": "top5",
        "jobs": [
            {"name": "top5", "kind": "top_k", "members": ["a"], "result": {"status": "done"}},
            {
                "name": "top5_full",
                "kind": "top_k",
                "members": ["a"],
                "result": {"status": "done", "same_job_as": "top5"},
            },
        ],
    }
    table = finalize_table(outcome)
    assert "done (= top5)" in table and "best recipe on test: top5" in table
