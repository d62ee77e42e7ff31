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


CONNECT_TIMEOUT_ENV = "REWARD_SEARCH_CONNECT_TIMEOUT"
DEFAULT_CONNECT_TIMEOUT_S = 30.0
GCS_DEFAULT_PORT = 6379


def connect_timeout(seconds: float | None = None) -> float:
    """How long a command waits for a cluster address to answer: `seconds` (`--connect-timeout`), else
    $REWARD_SEARCH_CONNECT_TIMEOUT, else 30 s."""
    from reward_search.errors import UserError

    if seconds is None:
        text = os.environ.get(CONNECT_TIMEOUT_ENV, "").strip()
        try:
            seconds = float(text) if text else DEFAULT_CONNECT_TIMEOUT_S
        except ValueError:
            raise UserError(f"${CONNECT_TIMEOUT_ENV}={text!r}: expected a number of seconds") from None
    if not seconds > 0:
        raise UserError(f"--connect-timeout {seconds:g}: must be more than 0 seconds")
    return float(seconds)


def _host_port(address: str) -> tuple[str, int] | None:
    """The TCP endpoint a Ray address names (GCS `HOST[:PORT]` or Ray Client `ray://HOST:PORT`); None for `auto`,
    `local` and URLs, which name no fixed endpoint to try."""
    if address in ("auto", "local") or address.startswith(("http://", "https://")):
        return None
    rest = address.removeprefix("ray://")
    host, _, port = rest.rpartition(":") if ":" in rest else (rest, "", str(GCS_DEFAULT_PORT))
    host = host.strip("[]")
    return (host, int(port)) if port.isdigit() and host else None


def check_reachable(address: str | None, seconds: float | None = None) -> None:
    """Fail in one line, within the connect timeout, when nothing answers at a cluster address.

    Ray's own connection retries run for minutes and name its resolved address, not the one typed; this tries a
    TCP connection to the address as given until it is accepted or the timeout passes (a head still starting gets
    that long). No address (a local Ray), `auto` and `local` are not checked.
    """
    import socket
    import time

    from reward_search.errors import UserError

    label = "--address" if address else "$RAY_ADDRESS"
    address = ray_address(address)
    endpoint = _host_port(address) if address else None
    if endpoint is None:
        return
    timeout = connect_timeout(seconds)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            socket.create_connection(endpoint, timeout=max(left, 0.1)).close()
            return
        except socket.gaierror as exc:
            raise UserError(f"{label} {address}: unknown host {endpoint[0]!r} ({exc.strerror})") from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
        if deadline - time.monotonic() <= 0:
            raise UserError(
                f"{label} {address}: no Ray cluster answered at {endpoint[0]}:{endpoint[1]} within {timeout:g} s "
                f"({reason}); check the head's address and GCS port ({GCS_DEFAULT_PORT} by default), or wait longer "
                f"with --connect-timeout / ${CONNECT_TIMEOUT_ENV}"
            )
        time.sleep(min(0.5, max(deadline - time.monotonic(), 0)))


AUTH_FAILURES = ("Unauthenticated", "InvalidAuthToken")  # what Ray's GCS client logs when its token is refused


@contextmanager
def explained_connection(address: str | None) -> Iterator[None]:
    """Around `ray.init(address=...)`: a failed connection becomes one line naming the address as typed, and token
    authentication when that was the cause; Ray's native per-second retry warnings are kept off the console (they
    are shown as they were when the connection succeeds).

    The native client writes to file descriptor 2 itself, so that descriptor is pointed at a temporary file."""
    import sys
    import tempfile

    from reward_search.errors import UserError
    from reward_search.ops.auth import find_token, missing_token_message, rejected_token_message

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as log:
        os.dup2(log.fileno(), 2)
        failure: BaseException | None = None
        try:
            yield
        except ConnectionError as exc:
            failure = exc
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            text = log.read().decode("utf-8", "replace")
        if failure is None:
            sys.stderr.write(text)
            return
    where = address or os.environ.get("RAY_ADDRESS") or "the local Ray"
    if any(marker in text or marker in str(failure) for marker in AUTH_FAILURES):
        token = find_token()
        raise UserError(rejected_token_message(where, token) if token else missing_token_message(where)) from None
    raise UserError(f"cannot connect to the Ray cluster at {where}: {str(failure).splitlines()[0]}") from None


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
    if ray.is_initialized():
        return ray.init(address=address, namespace=namespace_for(run_id), ignore_reinit_error=True)
    check_reachable(address)  # the CLI checked before the run directory; a programmatic caller is checked here
    options = {
        "address": address,
        "namespace": namespace_for(run_id),
        "include_dashboard": dashboard if address is None else None,
        "log_to_driver": False,
        "ignore_reinit_error": True,
    }
    if address in (None, "local"):  # starting a Ray here: its daemons inherit descriptor 2, so it stays as it is
        return ray.init(**options)
    with explained_connection(address):
        return ray.init(**options)


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
