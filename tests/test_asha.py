"""ASHA (`search.asha`) through real Tune: a trial the scheduler stops is `stopped` at the step it reached, never
`failed`, and never ranked (README, "Early stopping").

The smoke model's dev accuracy is 0 for every trial, and ASHA stops a trial only when its rung score is strictly
below the cutoff, so a real TRL search cannot be made to stop one on purpose: the smoke search checks that every
trial ends `done` (none stopped by the last checkpoint's report at `max_t`, none recorded as an infrastructure
failure) or `stopped` with its step. The deterministic stop uses the real driver, searcher, leaderboard and Tune's
ASHA with a stand-in trainable that reports the dev accuracies a screening run would: the first trial 0.5, the
others 0.0 at the grace-period rung, below the first one's, so ASHA stops them there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import ray

from reward_search.config import load_config
from reward_search.search.leaderboard import load_entries
from reward_search.testing.local_ray import start_local_ray

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "experiments" / "smoke.yaml"

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, *overrides: str):
    return load_config(
        SMOKE,
        [
            f"run.storage_path={tmp_path}",
            "run.name=asha",
            "search.rounds=1",
            "search.candidates_per_round=2",
            "search.max_concurrent_trials=1",
            "search.asha=true",
            "search.asha_grace_period=1",
            "finalize.enabled=false",
            *overrides,
        ],
    )


def _status(run_dir: Path) -> str:
    shown = subprocess.run(
        [sys.executable, "-m", "reward_search.cli", "status", str(run_dir)], capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def reporting_trainable(params: dict) -> None:
    """Stands in for a screening run under ASHA: three checkpoint reports (dev accuracy 0.5 for the first trial to
    start, 0.0 for the others), then the final report of a finished run."""
    from ray import tune

    marker = Path(params["config"]["run"]["storage_path"]) / "first-trial"
    accuracy = 0.0 if marker.exists() else 0.5
    marker.touch()
    for step in (1, 2, 3):
        tune.report({"step": step, "final": False, "dev_accuracy": accuracy})
    final = {"step": 3, "final": True, "status": "done", "trial_key": f"k-{params['candidate_id']}"}
    tune.report({**final, "selection_accuracy": accuracy, "selection_correct": int(accuracy * 4), "selection_n": 4})


def test_asha_stops_a_trial_behind_at_its_rung_and_records_it_stopped_at_that_step(tmp_path):
    from ray import cloudpickle

    from reward_search.search.driver import run_search

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    config = _config(tmp_path, "training.steps=3")
    start_local_ray(num_cpus=2)
    try:
        run_search(config, trainable=reporting_trainable, verbose=False)
    finally:
        ray.shutdown()
    run_dir = tmp_path / "asha"
    entries = [e for e in load_entries(run_dir) if e.status != "rejected"]
    assert sorted(e.status for e in entries) == ["done", "stopped"], [(e.name, e.status, e.reasons) for e in entries]
    stopped = next(e for e in entries if e.status == "stopped")
    assert stopped.steps == 1 and stopped.accuracy is None  # stopped at the grace-period rung, never scored
    assert stopped.reasons[-1].startswith("stopped early by the Tune scheduler (ASHA) after step 1")
    assert stopped.dev_curve == [0.0]
    shown = _status(run_dir)
    row = next(line for line in shown.splitlines() if f" {stopped.name} " in line)
    assert "stopped@1" in row and "ASHA" in row
    assert not row.lstrip().startswith("1 ")  # not ranked: only the done trial has a rank
    assert "1 done, " in shown and "1 stopped" in shown


def test_a_smoke_search_with_asha_ends_every_trial_done_or_stopped_never_failed(tmp_path):
    config = _config(tmp_path, "training.steps=2")
    from reward_search.search.driver import run_search

    start_local_ray(num_cpus=2)
    try:
        run_search(config, verbose=False)
    finally:
        ray.shutdown()
    run_dir = tmp_path / "asha"
    entries = [e for e in load_entries(run_dir) if e.status != "rejected"]
    assert len(entries) == 2 and all(e.status in ("done", "stopped") for e in entries), [
        (e.name, e.status, e.reasons) for e in entries
    ]
    assert any(e.status == "done" for e in entries)  # equal dev accuracies at the rung: ASHA keeps both
    shown = _status(run_dir)
    for e in entries:
        if e.status == "done":  # reached its final evaluation: the report at max_t did not stop it
            assert e.steps == 2 and e.n == 4 and e.accuracy is not None
        else:  # stopped at a rung, before the last step
            assert e.steps is not None and e.steps < 2 and f"stopped@{e.steps}" in shown


class _Trial:
    def __init__(self, trial_id: str) -> None:
        self.trial_id = trial_id


def test_checkpoint_asha_judges_checkpoint_reports_only_and_names_the_trials_it_stopped():
    """In-process: the scheduler's rung decisions, and how the searcher records a trial without a final report."""
    from ray.tune.schedulers import TrialScheduler

    from reward_search.search.asha import CheckpointASHA
    from reward_search.search.searcher import fields_from_result

    asha = CheckpointASHA(
        metric="dev_accuracy", mode="max", time_attr="step", max_t=3, grace_period=1, stop_last_trials=False
    )
    ahead, behind = _Trial("a"), _Trial("b")
    for trial in (ahead, behind):
        asha.on_trial_add(None, trial)
    assert asha.metric is None  # Tune's strict check must not require dev_accuracy in final reports
    assert asha.on_trial_result(None, ahead, {"step": 1, "dev_accuracy": 0.5}) == TrialScheduler.CONTINUE
    assert asha.on_trial_result(None, ahead, {"step": 3, "final": True, "dev_accuracy": None}) == "CONTINUE"
    asha.on_trial_complete(None, ahead, {"step": 3, "final": True, "dev_accuracy": None})  # no TypeError on None
    assert asha.on_trial_result(None, behind, {"step": 1}) == TrialScheduler.CONTINUE  # no dev evaluation: unjudged
    last = {"step": 1, "dev_accuracy": 0.0}
    assert asha.on_trial_result(None, behind, last) == TrialScheduler.STOP and asha.stopped == {"b"}
    fields = fields_from_result(last, False, 0.0, stopped="b" in asha.stopped)
    assert fields["status"] == "stopped" and fields["steps"] == 1 and "ASHA" in fields["reasons"][0]
    assert fields_from_result(last, False, 0.0, stopped=False)["status"] == "failed"  # no final report, not stopped
