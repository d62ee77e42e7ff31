"""Experiment tracking through the anchors' own integrations (optional extras): MLflow or W&B.

The search becomes one MLflow run; each screening trial becomes a run nested under it (Ray Tune's
`MLflowLoggerCallback` with the `mlflow.parentRunId` tag), holding its parameters, every Tune report as metrics,
the per-step training curves (`train/...`, from the trial's curves file) and the candidate's source as an artefact.
At the end of the search the leaderboard is logged to the parent run as a table. W&B uses Tune's
`WandbLoggerCallback` in offline mode (files under the run directory).

Tracking never fails a trial or the search: an unreachable URI or any error while logging is warned about once and
tracking is switched off. A missing extra is a user error (one line, exit 2) before anything starts.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reward_search import io
from reward_search.candidates.records import rank_entries, rank_labels
from reward_search.config import ExperimentConfig, TrackingConfig, to_plain
from reward_search.errors import UserError

STATE_FILE = "tracking.json"
_EXTRAS = {"mlflow": ("mlflow", "mlflow"), "wandb": ("wandb", "wandb")}  # kind: (module, extra)


def check_extra(tracking: TrackingConfig) -> None:
    """One clear line when the tracking kind's package is missing (the optional extra was not installed)."""
    if tracking.kind == "none":
        return
    module, extra = _EXTRAS[tracking.kind]
    try:
        importlib.import_module(module)
    except ImportError:
        raise UserError(
            f"tracking.kind: {tracking.kind} needs the optional extra '{extra}' "
            f"(pip install 'reward-search[{extra}]'), or set tracking.kind: none"
        ) from None


def tracking_uri(tracking: TrackingConfig, run_dir: Path) -> str:
    """The MLflow tracking URI: the configured one (a bare folder becomes a file: URI), else <run dir>/mlruns."""
    if not tracking.uri:
        return (run_dir / "mlruns").resolve().as_uri()
    if "://" in tracking.uri or tracking.uri.startswith("file:"):
        return tracking.uri
    return Path(tracking.uri).expanduser().resolve().as_uri()


def reachable(uri: str, timeout: float = 3.0) -> str | None:
    """None when a tracking server answers (file stores always do), else why not."""
    scheme = urllib.parse.urlparse(uri).scheme
    if scheme not in ("http", "https"):
        return None
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
            return None
    except Exception as exc:  # any failure means: go on without tracking
        return f"{type(exc).__name__}: {exc}"


class _Warner:
    """Warns once per search, then stays quiet (tracking problems must not flood the log)."""

    def __init__(self) -> None:
        self.warned = False
        self.disabled = False

    def __call__(self, what: str, exc: BaseException | str) -> None:
        self.disabled = True
        if not self.warned:
            self.warned = True
            print(f"warning: tracking switched off ({what}: {exc}); the search goes on", file=sys.stderr, flush=True)


def guarded(warn: _Warner, what: str, call: Callable[[], Any]) -> Any:
    """Runs a tracking call unless tracking was switched off; any error switches it off with one warning."""
    if warn.disabled:
        return None
    try:
        return call()
    except Exception as exc:  # tracking never fails a trial
        warn(what, exc)
        return None


def trial_params(config: dict[str, Any]) -> dict[str, str]:
    """A trial's parameters for MLflow: its round and candidate, the reward spec and every training knob."""
    params: dict[str, str] = {}
    for key in ("round", "candidate", "candidate_id", "job_name"):
        if key in config:
            params[key] = str(config[key])
    spec = config.get("spec") or {}
    params["reward/base_rewards"] = str(spec.get("base_rewards"))
    params["reward/candidates"] = ",".join(c.get("name", "?") for c in spec.get("candidates", []))
    experiment = config.get("config") or {}
    for section in ("training", "model"):
        for key, value in _flat(experiment.get(section) or {}, section).items():
            params[key] = str(value)[:500]
    params["run/seed"] = str((experiment.get("run") or {}).get("seed"))
    return params


def _flat(data: dict[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}/{key}"
        if isinstance(value, dict):
            out.update(_flat(value, name))
        else:
            out[name] = value
    return out


def curve_metrics(trial_dir: str | None) -> list[tuple[int, dict[str, float]]]:
    """(step, metrics) for each row of a trial's curves file (empty when the file is not on this machine)."""
    path = Path(trial_dir or "") / "curves.parquet"
    if not trial_dir or not path.is_file():
        return []
    import pyarrow.parquet as pq

    rows = []
    for row in pq.read_table(path).to_pylist():
        metrics = {
            f"train/{k}": float(v)
            for k, v in row.items()
            if k != "step" and isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        }
        rows.append((int(row["step"]), metrics))
    return rows


@dataclass
class SearchTracking:
    """What the driver holds: Tune callbacks to add, and the parent run for the leaderboard table."""

    kind: str = "none"
    callbacks: list[Any] = field(default_factory=list)
    parent_run_id: str | None = None
    uri: str | None = None
    warn: _Warner = field(default_factory=_Warner)

    def log_leaderboard(self, entries: Sequence[Any], metric: str) -> None:
        """The ranked leaderboard as an MLflow table on the search's run, and its best values as metrics."""
        if self.kind != "mlflow" or self.parent_run_id is None:
            return
        guarded(self.warn, "logging the leaderboard", lambda: _log_leaderboard(self, entries, metric))


def _log_leaderboard(tracking: SearchTracking, entries: Sequence[Any], metric: str) -> None:
    from mlflow import MlflowClient

    ranked = rank_entries(entries, metric)
    columns: dict[str, list[Any]] = {
        k: [] for k in ("rank", "name", "round", "accuracy", "gold_logprob", "n", "no_signal", "candidate_id")
    }
    for label, e in zip(rank_labels(ranked, metric), ranked, strict=True):
        signal = (e.curve_summary or {}).get("signal") or {}
        for key, value in (
            ("rank", label),
            ("name", e.name),
            ("round", e.round),
            ("accuracy", e.accuracy),
            ("gold_logprob", e.gold_logprob),
            ("n", e.n),
            ("no_signal", signal.get("no_signal") or ""),
            ("candidate_id", e.candidate_id),
        ):
            columns[key].append(value)
    client = MlflowClient(tracking_uri=tracking.uri)
    client.log_table(tracking.parent_run_id, data=columns, artifact_file="leaderboard.json")
    client.set_tag(tracking.parent_run_id, "selection.metric", metric)
    if ranked:
        best = ranked[0]
        metrics = {"best/accuracy": best.accuracy, "best/gold_logprob": best.gold_logprob}
        for key, value in metrics.items():
            if value is not None:
                client.log_metric(tracking.parent_run_id, key, float(value))
    client.set_terminated(tracking.parent_run_id)  # a resumed search logs to it again


def start_tracking(config: ExperimentConfig, run_dir: Path) -> SearchTracking:
    """The tracking of one search session (the parent run is reused when the run directory is resumed)."""
    tracking = config.tracking
    check_extra(tracking)
    if tracking.kind == "none":
        return SearchTracking()
    if tracking.kind == "wandb":
        return _start_wandb(config, run_dir)
    uri = tracking_uri(tracking, run_dir)
    if uri.startswith("file:"):  # MLflow 3 keeps its file store behind this switch (the sqlite store needs the full
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # package; a server URI needs neither)
    result = SearchTracking(kind="mlflow", uri=uri)
    problem = reachable(uri)
    if problem is not None:
        result.warn(f"tracking URI {uri} is unreachable", problem)
        return result
    parent = guarded(result.warn, f"starting the search's run at {uri}", lambda: _parent_run(config, run_dir, uri))
    if parent is None:
        return result
    result.parent_run_id = parent
    result.callbacks = [_mlflow_callback(config, uri, parent, result.warn)]
    return result


def _experiment_name(config: ExperimentConfig) -> str:
    return config.tracking.experiment or config.run.name


def _parent_run(config: ExperimentConfig, run_dir: Path, uri: str) -> str:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    name = _experiment_name(config)
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    state_file = run_dir / STATE_FILE
    if state_file.is_file():
        state = json.loads(state_file.read_text())
        if state.get("uri") == uri and state.get("parent_run_id"):
            return str(state["parent_run_id"])
    run = client.create_run(experiment_id, run_name=config.run.name, tags={"reward_search.run_dir": str(run_dir)})
    selection = to_plain(config.selection)
    params = {"search/rounds": config.search.rounds, "search/candidates_per_round": config.search.candidates_per_round}
    params.update({f"selection/{k}": v for k, v in selection.items()})
    params.update({"proposer/kind": config.proposer.kind, "model/spec": config.model.spec})
    for key, value in params.items():
        client.log_param(run.info.run_id, key, str(value))
    io.write_json(state_file, {"uri": uri, "parent_run_id": run.info.run_id, "experiment_id": experiment_id})
    return run.info.run_id


def _mlflow_callback(config: ExperimentConfig, uri: str, parent: str, warn: _Warner) -> Any:
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    class NestedTrialRuns(MLflowLoggerCallback):
        """Tune's MLflow callback with nested runs, curated params, curves and the candidate's source; guarded."""

        def setup(self, *args: Any, **kwargs: Any) -> None:
            guarded(warn, "setting up MLflow", lambda: MLflowLoggerCallback.setup(self, *args, **kwargs))

        def log_trial_start(self, trial: Any) -> None:
            guarded(warn, "starting a trial's run", lambda: self._start(trial))

        def _start(self, trial: Any) -> None:
            if trial in self._trial_runs:
                return
            tags = {**self.tags, "trial_name": str(trial), "mlflow.parentRunId": parent}
            name = str(trial.config.get("candidate") or trial.config.get("job_name") or trial)
            run = self.mlflow_util.start_run(tags=tags, run_name=name)
            self._trial_runs[trial] = run.info.run_id
            self.mlflow_util.log_params(run_id=run.info.run_id, params_to_log=trial_params(trial.config))

        def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
            if trial in getattr(self, "_trial_runs", {}):
                call = super().log_trial_result
                guarded(warn, "logging a trial result", lambda: call(iteration, trial, result))

        def log_trial_end(self, trial: Any, failed: bool = False) -> None:
            if trial in getattr(self, "_trial_runs", {}):
                guarded(warn, "ending a trial's run", lambda: self._end(trial, failed))

        def _end(self, trial: Any, failed: bool) -> None:
            run_id = self._trial_runs[trial]
            client = self.mlflow_util._get_client()
            for candidate in (trial.config.get("spec") or {}).get("candidates", []):
                client.log_text(run_id, candidate["source"], f"candidate/{candidate['name']}.py")
            result = trial.last_result or {}
            for step, metrics in curve_metrics(result.get("trial_dir") or trial.config.get("trial_dir")):
                self.mlflow_util.log_metrics(run_id=run_id, metrics_to_log=metrics, step=step)
            status = "FAILED" if failed or result.get("status") not in (None, "done") else "FINISHED"
            self.mlflow_util.end_run(run_id=run_id, status=status)

    return NestedTrialRuns(tracking_uri=uri, experiment_name=_experiment_name(config), tags={"search": parent})


def _start_wandb(config: ExperimentConfig, run_dir: Path) -> SearchTracking:
    """W&B through Tune's WandbLoggerCallback, offline (files under <run dir>/wandb; `wandb sync` uploads)."""
    from ray.air.integrations.wandb import WandbLoggerCallback

    folder = run_dir / "wandb"
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_DIR", str(folder))
    callback = WandbLoggerCallback(
        project=config.tracking.project or config.run.name,
        group=config.run.name,
        mode="offline",
        dir=str(folder),
        excludes=["config", "spec"],
    )
    return SearchTracking(kind="wandb", callbacks=[callback], uri=str(folder))
