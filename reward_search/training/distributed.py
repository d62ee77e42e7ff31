"""A trial over several training processes: Ray Train's TorchTrainer (DDP through accelerate) inside a Tune trial.

`search.gpus_per_trial` of 2 or more (or `search.train_workers` 2 on CPU, over gloo) runs the screening run on one
worker per GPU; never `nn.DataParallel`. Every worker runs the same `run_screening` on the same trial folder: rank 0
writes the artefacts (curves, adapter, evaluations, result) and the checkpoints, the others only train. Rank 0's
reports reach Tune through a queue drained by the Tune trial's own process, which calls `tune.report` (so checkpoints
land in Tune's storage exactly as for a one-process trial) and answers each report before rank 0 goes on. A
restarted trial first puts Tune's checkpoint back into the trial folder, where every worker resumes from it.
"""

from __future__ import annotations

import json
import queue
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from reward_search import io
from reward_search.config import ExperimentConfig, from_dict
from reward_search.training.placement import gpu_hours, train_workers
from reward_search.training.reporting import Reporter
from reward_search.training.spec import RewardSpec, trial_key

REPLY_TIMEOUT_S = 3600.0  # a report waits this long for the Tune process to take it (a checkpoint copy included)


class QueueReporter(Reporter):
    """Rank 0's reporter: each report goes to the Tune trial's process, and waits until Tune has taken it."""

    def __init__(self, requests: Any, replies: Any) -> None:
        self.requests, self.replies = requests, replies

    def report(self, metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
        self.requests.put((metrics, str(checkpoint_dir) if checkpoint_dir else None))
        self.replies.get(timeout=REPLY_TIMEOUT_S)


class SilentReporter(Reporter):
    """The other ranks report nothing (rank 0 speaks for the trial)."""

    def report(self, metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
        return None


def trial_folder(config: ExperimentConfig, spec: RewardSpec, out_dir: str | None) -> tuple[Path, str]:
    """The trial folder and key, as `run_screening` derives them."""
    from reward_search.task import get_task

    splits = get_task(config.data).load_splits()
    key = trial_key(config, spec, splits.manifest)
    out = Path(out_dir) if out_dir else Path(config.run.storage_path) / config.run.name / "trials" / key
    return out.expanduser().resolve(), key


def worker_loop(params: dict[str, Any]) -> None:
    """One training worker: the screening run on the shared trial folder (rank 0 reports, the others train)."""
    import warnings

    import ray.train

    from reward_search.ops.jobs import apply_job_secrets
    from reward_search.training.screening import run_screening

    warnings.filterwarnings("ignore", category=FutureWarning)
    apply_job_secrets()
    config = from_dict(ExperimentConfig, params["config"])
    spec = RewardSpec.from_dict(params["spec"])
    rank = ray.train.get_context().get_world_rank()
    reporter = QueueReporter(params["requests"], params["replies"]) if rank == 0 else SilentReporter()
    run_screening(config, spec, params["out"], reporter=reporter, progress=False)


def _trainer(config: ExperimentConfig, params: dict[str, Any], storage: str) -> Any:
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    search = config.search
    workers = train_workers(search)
    use_gpu = search.gpus_per_trial > 0
    per_worker = {"CPU": max(search.cpus_per_trial / workers, 0.01)} | ({"GPU": 1.0} if use_gpu else {})
    return TorchTrainer(
        worker_loop,
        train_loop_config=params,
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu, resources_per_worker=per_worker),
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        # Tune retries the whole trial (from its last checkpoint); Ray Train does not retry on its own.
        run_config=RunConfig(
            name=f"train-{uuid.uuid4().hex[:8]}", storage_path=storage, failure_config=FailureConfig(0)
        ),
    )


def run_distributed(params: dict[str, Any], reporter: Reporter) -> None:
    """The Tune trial of a multi-worker screening run: restore, start the workers, forward rank 0's reports."""
    from ray.util.queue import Queue

    started = time.perf_counter()
    config = from_dict(ExperimentConfig, params["config"])
    spec = RewardSpec.from_dict(params["spec"])
    out, _ = trial_folder(config, spec, params.get("trial_dir"))
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    reporter.restore(out / "checkpoints")  # Tune's latest checkpoint, where every worker resumes from
    requests, replies = Queue(actor_options={"num_cpus": 0}), Queue(actor_options={"num_cpus": 0})
    storage = tempfile.mkdtemp(prefix="reward-search-train-")  # Ray Train's own bookkeeping; no checkpoints
    worker_params = {**params, "out": str(out), "requests": requests, "replies": replies}
    errors: list[BaseException] = []

    def fit() -> None:
        try:
            _trainer(config, worker_params, storage).fit()
        except BaseException as exc:  # handed to the trial's thread, which raises it for Tune to retry
            errors.append(exc)

    thread = threading.Thread(target=fit, name="ray-train-fit", daemon=True)
    thread.start()
    try:
        _forward(requests, replies, reporter, thread, config, out, started)
        thread.join()
    finally:  # on an error here the trial's process ends, and the workers (its actors' children) with it
        shutil.rmtree(storage, ignore_errors=True)
    if errors:
        raise errors[0]


def _forward(
    requests: Any, replies: Any, reporter: Reporter, thread: threading.Thread, config: Any, out: Path, started: float
) -> None:
    """Pass rank 0's reports to Tune until the workers end; the final one carries the whole trial's GPU-hours."""
    while thread.is_alive() or not requests.empty():
        try:
            metrics, checkpoint = requests.get(timeout=1.0)
        except queue.Empty:
            continue
        if metrics.get("final"):
            metrics = {**metrics, **_whole_trial(config, out, started)}
        reporter.report(metrics, Path(checkpoint) if checkpoint else None)
        replies.put(True)


def _whole_trial(config: Any, out: Path, started: float) -> dict[str, Any]:
    """Wall time of the whole trial times every worker's GPU, also written into result.json."""
    gpus = float(train_workers(config.search)) if config.search.gpus_per_trial > 0 else 0.0
    wall = round(time.perf_counter() - started, 3)
    figures = {"wall_seconds": wall, "gpus": gpus, "gpu_hours": gpu_hours(wall, gpus)}
    result_file = out / "result.json"
    if result_file.is_file():
        result = json.loads(result_file.read_text())
        if not result.get("cached"):
            io.write_json(result_file, {**result, **figures})
    return {"wall_seconds": wall, "gpu_hours": figures["gpu_hours"]}
