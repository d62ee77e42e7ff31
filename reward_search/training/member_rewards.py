"""An ensemble member's reward in the finalize phase: a failed call scores 0 for that batch and is recorded.

The reference scored a crashing member 0 and trained on; ending a 300-step ensemble because one of its five rewards
failed once would lose the other four. After any failed call (an exception, a crash, a timeout) the member's worker
is closed and the next batch starts a fresh one, so whatever state the failure left behind is gone. Every failure
is counted in the trial's metrics (`sandbox/<name>/zeroed_calls`, `.../restarts`) and the first few are kept with
their errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reward_search.candidates.rewards import _NOT_FORWARDED, SandboxedReward, _jsonable

MAX_RECORDED_FAILURES = 20


class ZeroOnFailureReward(SandboxedReward):
    """A `SandboxedReward` that never ends its trial: a failed call gives 0.0 per completion and a record."""

    def _init_runtime(self) -> None:
        super()._init_runtime()
        self.failures: list[dict[str, Any]] = []
        self.restarts = 0

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        columns = {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items() if k not in _NOT_FORWARDED}
        columns = {k: v for k, v in columns.items() if _jsonable(v)}
        result = self._get_runner().call(self.candidate.source, self.candidate.name, prompts, completions, **columns)
        with self._lock:
            self.calls += 1
            if result.ok and result.scores is not None:
                return result.scores
            self.failed_calls += 1
            self.failed_completions += len(completions)
            self.timeouts += result.kind == "timeout"
            self.last_error = f"{result.kind}: {result.error}"
            if len(self.failures) < MAX_RECORDED_FAILURES:
                self.failures.append({"call": self.calls, "error": self.last_error})
        self.close()  # the next batch starts a fresh worker, whatever state the failure left behind
        self.restarts += 1
        return [0.0] * len(completions)

    def metrics(self) -> dict[str, float]:
        counters = super().metrics()
        counters[f"sandbox/{self.candidate.name}/zeroed_calls"] = float(self.failed_calls)
        counters[f"sandbox/{self.candidate.name}/restarts"] = float(self.restarts)
        return counters
