"""The search metrics without Ray: names, and every method a no-op while Ray is not initialised."""

from __future__ import annotations

import re

from reward_search.ops.metrics import METRIC_NAMES, METRICS, SearchMetrics, exported_name


def test_names_are_prometheus_names_with_the_project_prefix() -> None:
    assert len(set(METRIC_NAMES)) == len(METRICS) == 11
    for name in METRIC_NAMES:
        assert re.fullmatch(r"reward_search_[a-z_]+", name)
    assert all("run" in m.tags for m in METRICS)
    assert exported_name("reward_search_round", "gauge") == "ray_reward_search_round"
    assert exported_name("reward_search_trials_failed", "counter") == "ray_reward_search_trials_failed_total"


def test_no_op_without_ray() -> None:
    import ray

    assert not ray.is_initialized()
    metrics = SearchMetrics("offline")
    metrics.proposed(2)
    metrics.validated(True)
    metrics.validated(False, "policy")
    metrics.trial_started()
    metrics.trial_finished("failed")
    metrics.best(0.4)
    metrics.best(0.2)
    metrics.round(3)
    metrics.llm_usage(10, 0.5)
    metrics.gpu_hours(1.0)
    assert metrics._metrics is None and metrics._best == 0.4 and metrics._running == 0
