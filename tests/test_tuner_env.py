"""Tune's environment for a search: pending trials, and no watchdog that kills a search whose proposer is slow."""

from __future__ import annotations

import logging
import os
import time

import pytest
from ray.tune.execution import insufficient_resources_manager as watchdog

from reward_search.search.tuner import PENDING_TRIALS_ENV, WATCHDOG_ENVS, pending_trials


def _stalled_for_an_hour() -> watchdog._InsufficientResourcesManager:
    """A watchdog that has seen no trial at all for an hour (a slow LLM still proposing the first round)."""
    manager = watchdog._InsufficientResourcesManager()
    manager.on_no_available_trials([])  # first look: remembers 0 trials
    manager.on_no_available_trials([])  # second look: starts its clock
    manager._no_running_trials_since = time.monotonic() - 3600
    return manager


def test_the_watchdog_is_off_while_searching_and_restored_after(monkeypatch):
    for name in (PENDING_TRIALS_ENV, *WATCHDOG_ENVS):
        monkeypatch.delenv(name, raising=False)
    watchdog._get_insufficient_resources_warning_threshold.cache_clear()
    with pytest.raises(IndexError):  # Ray's own behaviour, which the search must never meet
        _stalled_for_an_hour().on_no_available_trials([])
    with pending_trials(3):
        assert os.environ[PENDING_TRIALS_ENV] == "3"
        _stalled_for_an_hour().on_no_available_trials([])  # no IndexError: the search goes on
    assert PENDING_TRIALS_ENV not in os.environ and not any(name in os.environ for name in WATCHDOG_ENVS)
    assert watchdog._get_insufficient_resources_warning_threshold() == 60.0  # Ray's default is back


def test_values_the_user_set_are_kept(monkeypatch):
    monkeypatch.setenv(PENDING_TRIALS_ENV, "7")
    monkeypatch.setenv(WATCHDOG_ENVS[0], "120")
    with pending_trials(3):
        assert os.environ[PENDING_TRIALS_ENV] == "7" and os.environ[WATCHDOG_ENVS[0]] == "120"
    assert os.environ[PENDING_TRIALS_ENV] == "7" and os.environ[WATCHDOG_ENVS[0]] == "120"


def _log_with_traceback(logger_name: str, message: str, caplog) -> logging.LogRecord:
    logger = logging.getLogger(logger_name)
    try:
        raise FileNotFoundError("[Errno 2] Failed to open local file '/tmp/x/..searcher-state.pkl.tmp'")
    except FileNotFoundError:
        logger.error(message, exc_info=True)
    return caplog.records[-1]


def test_tunes_transient_sync_failure_is_one_warning_line(caplog):
    from reward_search.search.tuner import EXPERIMENT_STATE_LOGGER, quiet_transient_sync_errors

    quiet_transient_sync_errors()
    quiet_transient_sync_errors()  # installed once however often the driver connects
    filters = logging.getLogger(EXPERIMENT_STATE_LOGGER).filters
    assert sum(type(f).__name__ == "TransientSyncFilter" for f in filters) == 1
    with caplog.at_level(logging.INFO):
        message = "Saving experiment state to storage at '/runs/x/tune/session-1' failed with exception: "
        record = _log_with_traceback(EXPERIMENT_STATE_LOGGER, message, caplog)
        assert record.exc_info is None and record.levelno == logging.WARNING
        assert "FileNotFoundError" in record.getMessage() and "next snapshot" in record.getMessage()
        assert "Traceback" not in caplog.text
        # any other error of that logger, and the same message elsewhere, keep their traceback
        other = _log_with_traceback(EXPERIMENT_STATE_LOGGER, "Experiment state could not be restored", caplog)
        assert other.exc_info is not None and other.levelno == logging.ERROR
        elsewhere = _log_with_traceback("ray.tune.other", message, caplog)
        assert elsewhere.exc_info is not None
