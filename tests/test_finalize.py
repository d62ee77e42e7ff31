"""The finalize phase: recipe planning (pure) and a real small run on the smoke preset, resumed without retraining."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import ray

from reward_search.config import RecipeConfig, load_config
from reward_search.search.finalize import job_config, plan_jobs, probe_discrimination, recipe_members
from reward_search.search.records import LeaderboardEntry

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
    jobs = plan_jobs(config, board, board)
    names = [j.name for j in jobs]
    assert names[-2:] == ["baseline", "random"] and "top3" in names and "top5_full" in names
    baseline = jobs[names.index("baseline")]
    assert baseline.spec.candidates == () and baseline.spec.base_rewards
    again = plan_jobs(config, board, list(reversed(board)))
    assert jobs[-1].member_ids == again[-1].member_ids and len(jobs[-1].member_ids) == 2  # seeded, order-free
    full = jobs[names.index("top5_full")]
    assert full.steps == config.training.steps and jobs[names.index("top5")].steps == 7
    trained = job_config(config, jobs[names.index("top3")])
    assert trained.training.eval_test and trained.training.steps == 7 and trained.run.seed == config.run.seed


@pytest.mark.slow
def test_finalize_after_a_small_search_and_resume(tmp_path):
    from reward_search.search.driver import finalize_only, run_search
    from reward_search.search.leaderboard import load_entries

    if ray.is_initialized():
        ray.shutdown()
    config = load_config(
        SMOKE,
        [
            f"run.storage_path={tmp_path}",
            "run.name=fin",
            "search.rounds=1",
            "search.candidates_per_round=2",
            "finalize.recipes=[{name: top2, kind: top_k, k: 2}, {name: correct1, kind: correctness, k: 1}]",
            "finalize.random_k=2",
            "finalize.seeds=2",
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
    assert set(jobs) == {"top2", "correct1", "baseline", "random", f"{best}@seed3407", f"{best}@seed3408"}
    for job in jobs.values():
        result = job["result"]
        assert result["status"] == "done", (job["name"], result)
        assert result["test_n"] == 100 and result["selection_n"] == 4  # every job tested once, on all of test
        assert (Path(result["trial_dir"]) / "test.parquet").is_file()
    assert jobs[f"{best}@seed3407"]["result"]["trial_key"] == jobs[best]["result"]["trial_key"]  # same training
    assert jobs[f"{best}@seed3408"]["result"]["trial_key"] != jobs[best]["result"]["trial_key"]
    for e in load_entries(run_dir):  # the search itself never touched test
        if e.status == "done":
            assert not (Path(e.trial_dir) / "test.parquet").exists()

    stamps = {n: (Path(j["result"]["trial_dir"]) / "curves.parquet").stat().st_mtime_ns for n, j in jobs.items()}
    try:
        again = finalize_only(config, run_dir)
    finally:
        ray.shutdown()
    for job in again["jobs"]:
        assert job["result"]["cached"], job["name"]  # resumed: nothing retrained
        assert (Path(job["result"]["trial_dir"]) / "curves.parquet").stat().st_mtime_ns == stamps[job["name"]]
