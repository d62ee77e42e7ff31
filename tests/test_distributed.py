"""A multi-worker trial: Ray Train's TorchTrainer with 2 gloo workers on CPU (the path gpus_per_trial >= 2 takes on
GPUs), run as a Tune trial, a training worker killed mid-run, resumed from Tune's checkpoint; the same artefacts as a
one-worker trial, and only the adapter and records left when it ends."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from reward_search.candidates.candidate import RewardCandidate
from reward_search.config import load_config
from reward_search.training.spec import RewardSpec

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "experiments" / "smoke.yaml"
BENIGN = (REPO / "examples" / "rewards" / "numeric_closeness.py").read_text()
# What a finished one-worker trial leaves (tests/test_screening.py makes the same files).
ONE_WORKER_ARTEFACTS = {"trial.json", "curves.parquet", "adapter", "selection.parquet", "result.json"}
STEPS = 4


def kill_a_train_worker_after_first_checkpoint(tune_dir: Path, killed: list[int]) -> None:
    """SIGKILL one RayTrainWorker of this test's own Ray (from its GCS actor table) once Tune holds a checkpoint."""
    from ray._private import state

    deadline = time.time() + 600
    while time.time() < deadline:
        if any(tune_dir.rglob("checkpoint_*/trainer_state.json")):
            workers = [
                actor
                for actor in state.actors().values()
                if "RayTrainWorker" in actor["ActorClassName"] and actor["State"] == "ALIVE" and actor["Pid"]
            ]
            if len(workers) == 2:  # both workers of the first attempt
                pid = int(workers[-1]["Pid"])
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
        time.sleep(0.2)


@pytest.mark.slow
def test_two_gloo_workers_train_resume_after_a_kill_and_leave_one_worker_artefacts(tmp_path):
    import ray
    from ray import tune

    from reward_search.training.placement import tune_resources
    from reward_search.training.retention import DropCheckpointsWhenDone, checkpoint_config
    from reward_search.training.trainable import screening_trainable, trial_params

    config = load_config(SMOKE, [f"training.steps={STEPS}", "search.train_workers=2", "search.cpus_per_trial=1"])
    spec = RewardSpec((RewardCandidate.from_source(BENIGN),))
    trial = tmp_path / "trial"
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    killed: list[int] = []
    killer = threading.Thread(
        target=kill_a_train_worker_after_first_checkpoint, args=(tmp_path / "tune", killed), daemon=True
    )
    killer.start()
    try:
        grid = tune.Tuner(
            tune.with_resources(screening_trainable, tune_resources(config.search)),
            param_space=trial_params(config, spec, str(trial)),
            run_config=tune.RunConfig(
                storage_path=str(tmp_path / "tune"),
                name="ddp",
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=1),
                checkpoint_config=checkpoint_config(config.run),
                callbacks=[DropCheckpointsWhenDone(config.run.keep_checkpoints_after_trial)],
            ),
        ).fit()
    finally:
        ray.shutdown()
    killer.join(1)
    assert killed, "no training worker was killed"
    assert grid[0].error is None
    result = json.loads((trial / "result.json").read_text())
    assert result["status"] == "done" and result["steps"] == STEPS, result.get("error")
    assert 1 <= result["resumed_from_step"] < STEPS  # the retry resumed from Tune's copy, not from scratch
    assert result["device"] == "cpu" and result["gpu_hours"] == 0.0 and result["wall_seconds"] > 0
    assert grid[0].metrics["final"] and grid[0].metrics["status"] == "done"

    steps = [row["step"] for row in pq.read_table(trial / "curves.parquet").to_pylist()]
    assert steps == list(range(1, STEPS + 1))  # one curve, written by rank 0 only, continued after the resume
    records = {p.name for p in trial.iterdir() if not p.name.startswith("error")}  # the killed attempt's logs stay
    assert records == ONE_WORKER_ARTEFACTS
    assert (trial / "adapter" / "adapter_model.safetensors").is_file()
    assert pq.read_table(trial / "selection.parquet").num_rows == 4
    assert not list((tmp_path / "tune").rglob("checkpoint_*"))  # done: Tune's copies went too
