"""A search's custom metrics, exported by Ray (`ray.util.metrics`) to the dashboard and the Prometheus endpoint.

`SearchMetrics(run_id, run_name)` is called from the driver process and its threads (the proposing thread, Tune
callbacks). Every metric carries a `run` tag (the run id, unique per run, so two runs named `paper` never mix) and a
`run_name` tag (the name people chose, for reading dashboards). Calls are cheap and thread-safe, and do nothing while
Ray is not initialised (unit tests, `reward-search screen`). Ray prefixes exported names with `ray_`, so Prometheus
shows e.g. `ray_reward_search_candidates_proposed_total`. Totals that the driver already keeps across restarts (LLM
spend, GPU-hours) are gauges set to the running total, so a resumed run reports the right figure.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

PREFIX = "reward_search_"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str  # "counter" | "gauge"
    description: str
    tags: tuple[str, ...] = ("run", "run_name")


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("candidates_proposed", "counter", "Candidate rewards written by the proposer."),
    MetricSpec("candidates_accepted", "counter", "Candidates that passed validation (policy, load, probes)."),
    MetricSpec(
        "candidates_rejected", "counter", "Candidates rejected, by validation stage.", ("run", "run_name", "stage")
    ),
    MetricSpec("trials_running", "gauge", "Screening trials running now."),
    MetricSpec("trials_finished", "counter", "Screening trials that ended, by outcome.", ("run", "run_name", "status")),
    MetricSpec("trials_failed", "counter", "Screening trials that failed or crashed (infrastructure or candidate)."),
    MetricSpec("best_selection_accuracy", "gauge", "Best selection-split accuracy so far."),
    MetricSpec("round", "gauge", "The current search round."),
    MetricSpec("llm_tokens", "gauge", "LLM tokens used by the proposer so far (total)."),
    MetricSpec("llm_cost_usd", "gauge", "LLM spend of the proposer so far, in US dollars (total)."),
    MetricSpec("gpu_hours", "gauge", "GPU-hours used by screening so far (total)."),
)
METRIC_NAMES: tuple[str, ...] = tuple(PREFIX + m.name for m in METRICS)
FAILED_STATUSES = frozenset({"failed", "crashed", "error", "errored"})


def exported_name(name: str, kind: str) -> str:
    """The name a metric has on Ray's Prometheus endpoint (`ray_` prefix; counters end in `_total`)."""
    return f"ray_{name}_total" if kind == "counter" else f"ray_{name}"


class SearchMetrics:
    """The metrics of one run. Methods are safe from any thread of the driver; a no-op without Ray."""

    def __init__(self, run_id: str, run_name: str | None = None) -> None:
        self.run_id = run_id
        self.run_name = run_name or run_id
        self._lock = threading.Lock()
        self._metrics: dict[str, Any] | None = None
        self._running = 0
        self._best: float | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickles without its lock and metric handles (Tune pickles its callbacks with the experiment state)."""
        return {"run_id": self.run_id, "run_name": self.run_name, "_running": self._running, "_best": self._best}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["run_id"], state["run_name"])  # type: ignore[misc]
        self._running, self._best = state["_running"], state["_best"]

    # ----------------------------------------------------------------------------------------- plumbing

    def _get(self) -> dict[str, Any] | None:
        """The Ray metric objects, created on first use once Ray is initialised; None without Ray."""
        import ray

        if not ray.is_initialized():
            return None
        if self._metrics is not None:
            return self._metrics
        from ray.util.metrics import Counter, Gauge

        with self._lock:
            if self._metrics is None:
                made: dict[str, Any] = {}
                for spec in METRICS:
                    cls = Counter if spec.kind == "counter" else Gauge
                    metric = cls(PREFIX + spec.name, description=spec.description, tag_keys=spec.tags)
                    metric.set_default_tags({"run": self.run_id, "run_name": self.run_name})
                    made[spec.name] = metric
                self._metrics = made
        return self._metrics

    def _inc(self, name: str, value: float = 1.0, **tags: str) -> None:
        metrics = self._get()
        if metrics is not None and value > 0:
            metrics[name].inc(float(value), tags=tags or None)

    def _set(self, name: str, value: float) -> None:
        metrics = self._get()
        if metrics is not None:
            metrics[name].set(float(value))

    # ----------------------------------------------------------------------------------------- events

    def proposed(self, n: int = 1) -> None:
        """`n` candidates came back from the proposer (before de-duplication and validation)."""
        self._inc("candidates_proposed", n)

    def validated(self, accepted: bool, stage: str = "") -> None:
        """One candidate's verdict; `stage` names the validation stage that rejected it (policy, load, probes...)."""
        if accepted:
            self._inc("candidates_accepted")
        else:
            self._inc("candidates_rejected", stage=stage or "unknown")

    def trial_started(self) -> None:
        with self._lock:
            self._running += 1
            running = self._running
        self._set("trials_running", running)

    def trial_finished(self, status: str) -> None:
        """A trial ended with leaderboard status `status` (done, failed, crashed, stopped) or `error`."""
        with self._lock:
            self._running = max(0, self._running - 1)
            running = self._running
        self._set("trials_running", running)
        self._inc("trials_finished", status=status or "unknown")
        if status in FAILED_STATUSES:
            self._inc("trials_failed")

    def best(self, value: float | None) -> None:
        """A finished trial's selection accuracy; the gauge keeps the maximum seen."""
        if value is None:
            return
        with self._lock:
            if self._best is not None and value <= self._best:
                return
            self._best = float(value)
        self._set("best_selection_accuracy", value)

    def round(self, r: int) -> None:
        self._set("round", r)

    def llm_usage(self, tokens: int, usd: float) -> None:
        """The proposer's running totals (`proposer.usage()`), not increments."""
        self._set("llm_tokens", tokens)
        self._set("llm_cost_usd", usd)

    def gpu_hours(self, hours: float) -> None:
        """GPU-hours used so far (the leaderboard summary's `gpu_hours`), a running total."""
        self._set("gpu_hours", hours)
