"""Ray start-up and Tune assembly, shared by the search (`driver.py`) and the finalize phase (`finalize.py`).

Both run their trials the same way: one placement per trial (`training/placement.tune_resources`), trial folders
under `<run dir>/tune/<session>/`, `search.max_failures` retries, checkpoint retention, and a progress callback.
Ray and Tune are imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reward_search.config import ExperimentConfig

PENDING_TRIALS_ENV = "TUNE_MAX_PENDING_TRIALS_PG"
# Tune's watchdog thresholds (local and autoscaling clusters; Ray spells "INSUFFICENT" so), and a value that disables it
WATCHDOG_ENVS = ("TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S", "TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S_AUTOSCALER")
WATCHDOG_OFF_S = "1e12"
# Tune's logger for experiment-state snapshots, and the start of its message when one sync to storage fails
EXPERIMENT_STATE_LOGGER = "ray.tune.execution.experiment_state"
SYNC_FAILED = "Saving experiment state to storage"


class TransientSyncFilter(logging.Filter):
    """Tune's snapshot sync to storage can race its own searcher-state file, which it writes to a temporary name and
    renames: the copy then fails with FileNotFoundError, and Tune logs an ERROR with a traceback, although its next
    snapshot (seconds later, and always at the end) writes everything. This prints that as one warning line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.getMessage().startswith(SYNC_FAILED):
            error = record.exc_info[1]
            record.msg = (
                f"{record.getMessage()}{type(error).__name__}: {error} (Tune writes it again at its next snapshot)"
            )
            record.args = ()
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_transient_sync_errors() -> None:
    """Install TransientSyncFilter on Tune's experiment-state logger (once per process)."""
    logger = logging.getLogger(EXPERIMENT_STATE_LOGGER)
    if not any(isinstance(f, TransientSyncFilter) for f in logger.filters):
        logger.addFilter(TransientSyncFilter())


def ray_address(address: str | None) -> str | None:
    """The Ray cluster to join: `address`, else $RAY_ADDRESS, else None (start a local Ray)."""
    return address or os.environ.get("RAY_ADDRESS") or None


def connect_ray(address: str | None, run_id: str, dashboard: bool = False) -> Any:
    """Join the Ray at `address` in the run's namespace; Ray's context.

    Without `address`: $RAY_ADDRESS, else Ray's own default (a Ray this host already runs, else a new local one).
    A Ray this process already started is reused. `dashboard` applies to a local Ray only (joining a cluster keeps
    its dashboard as it is). Trial output stays in the trial folders, not on the driver's console.
    """
    import ray

    from reward_search.search.leaderboard import namespace_for

    quiet_transient_sync_errors()
    address = ray_address(address)
    return ray.init(
        address=address,
        namespace=namespace_for(run_id),
        include_dashboard=dashboard if address is None else None,
        log_to_driver=False,
        ignore_reinit_error=True,
    )


@contextmanager
def pending_trials(count: int) -> Iterator[None]:
    """Tune's settings for a search while the block runs (values already set in the environment are kept).

    - Tune lets a custom searcher keep one trial pending at a time, which serialises trial starts; the search allows
      its share of the slots (not the whole cluster's: other searches share it).
    - Tune's "insufficient resources" watchdog is switched off. When no trial exists for about 20 minutes (a slow
      LLM proposing the first round: Tune waits 600 s per poll), Ray 2.60's watchdog indexes the empty trial list
      and the whole search dies with an IndexError. The driver's own preflight checks resources instead.
    """
    values = {PENDING_TRIALS_ENV: str(count), **dict.fromkeys(WATCHDOG_ENVS, WATCHDOG_OFF_S)}
    added = [name for name in values if name not in os.environ]
    os.environ.update({name: values[name] for name in added})
    _forget_watchdog_threshold()
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)
        _forget_watchdog_threshold()


def _forget_watchdog_threshold() -> None:
    """Tune caches its watchdog threshold on first use; drop the cached value so the environment decides."""
    try:
        from ray.tune.execution import insufficient_resources_manager as watchdog

        watchdog._get_insufficient_resources_warning_threshold.cache_clear()
    except (ImportError, AttributeError):  # another Ray version: its own default applies
        pass


def asha_scheduler(config: ExperimentConfig) -> Any:
    """The ASHA early-stopping scheduler on dev accuracy when `search.asha` is set, else None (every trial runs)."""
    if not config.search.asha:
        return None
    from reward_search.search.asha import CheckpointASHA  # judges checkpoint reports only (see its docstring)

    return CheckpointASHA(
        metric="dev_accuracy",
        mode="max",
        time_attr="step",
        max_t=config.training.steps,
        grace_period=config.search.asha_grace_period,
        # Tune's default also stops every trial whose report reaches max_t: the checkpoint report at the last step,
        # so no trial would reach its final evaluation. Trials end by themselves after their last step.
        stop_last_trials=False,
    )


def build_tuner(
    config: ExperimentConfig,
    run_dir: Path,
    trainable: Callable[[dict[str, Any]], None],
    session: str,
    trial_name: Callable[[Any], str],
    progress: Any,
    max_concurrent: int | None,
    *,
    search_alg: Any = None,
    scheduler: Any = None,
    num_samples: int = 1,
    param_space: dict[str, Any] | None = None,
    callbacks: Sequence[Any] = (),
) -> Any:
    """A `tune.Tuner` running `trainable` with the trial placement, under `<run_dir>/tune/<session>`.

    `progress` is the first callback (the console and leaderboard progress), checkpoint retention the second, then
    `callbacks` (experiment tracking). `search_alg` proposes trials (the search) or `param_space` lists them (a grid,
    finalize); `trial_name` names each trial and its folder.
    """
    from ray import tune

    from reward_search.training.placement import tune_resources
    from reward_search.training.retention import DropCheckpointsWhenDone, checkpoint_config

    resources = tune_resources(config.search)  # one process's GPUs, or a coordinator for Ray Train workers
    # Keeping one checkpoint per trial (run.keep_checkpoints) makes Tune snapshot its state on every report, by
    # design; its "snapshotting ... may become a bottleneck" warning would repeat on the console for every trial.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    return tune.Tuner(
        tune.with_resources(trainable, resources),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            search_alg=search_alg,
            scheduler=scheduler,
            num_samples=num_samples,
            max_concurrent_trials=max_concurrent,
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_name,
            # a finished trial's process runs the next one: torch, transformers and TRL stay imported (seconds per
            # trial on CPU, plus CUDA's start on a GPU); screening_trainable frees its model before returning
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            storage_path=str(run_dir / "tune"),
            name=session,
            failure_config=tune.FailureConfig(max_failures=config.search.max_failures),
            checkpoint_config=checkpoint_config(config.run),
            verbose=0,
            callbacks=[progress, DropCheckpointsWhenDone(config.run.keep_checkpoints_after_trial), *callbacks],
        ),
    )
