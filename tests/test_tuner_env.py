"""Tune's environment for a search: pending trials, and no watchdog that kills a search whose proposer is slow."""

from __future__ import annotations

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
