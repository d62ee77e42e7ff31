"""An ensemble member's reward in the finalize phase: a failed call scores 0 for that batch and is recorded.

The reference scored a crashing member 0 and trained on; ending a 300-step ensemble because one of its five rewards
failed once would lose the other four. After any failed call (an exception, a crash, a timeout) the member's worker
is closed and the next batch starts a fresh one, so whatever state the failure left behind is gone. Every failure
is counted in the trial's metrics (`sandbox/<name>/zeroed_calls`, `.../restarts`) and the first few are kept with
their errors. A member is spot re-probed like a screening reward (every `candidates.reprobe_every` calls): scores
that differ from its validation end the job as `failed` with the re-probe's reason (a reward that changed behaviour
taints the whole ensemble; zeroing it would hide that), while a re-probe call that fails counts as a failed call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reward_search.candidates.rewards import _NOT_FORWARDED, SandboxedReward, _jsonable
from reward_search.candidates.sandbox import CallResult, CandidateRunner

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
        if self.stopped is not None:
            raise self.stopped
        runner = self._get_runner()
        result = runner.call(self.candidate.source, self.candidate.name, prompts, completions, **columns)
        with self._lock:
            self.calls += 1
            if result.ok and result.scores is not None:
                due = self.config.reprobe_every and self.calls % self.config.reprobe_every == 0
                if not due or self._reprobe_member(runner):
                    return result.scores
            else:
                self._record_failure(result, len(completions))
        self.close()  # the next batch starts a fresh worker, whatever state the failure left behind
        self.restarts += 1
        return [0.0] * len(completions)

    def _record_failure(self, result: CallResult, completions: int) -> None:
        self.failed_calls += 1
        self.failed_completions += completions
        self.timeouts += result.kind == "timeout"
        self.last_error = f"{result.kind}: {result.error}"
        if len(self.failures) < MAX_RECORDED_FAILURES:
            self.failures.append({"call": self.calls, "error": self.last_error})

    def _reprobe_member(self, runner: CandidateRunner) -> bool:
        """A spot re-probe: True when it agrees (or there is none); a failed re-probe call is a failed call (False,
        the batch scores 0); different scores raise `CandidateDrifted`, which ends the job as `failed`."""
        rescored = self._rescore(runner)
        if rescored is None:
            return True
        expected, result = rescored
        if not result.ok:
            self._record_failure(result, len(expected))
            return False
        if result.scores != expected:
            self._drifted(f"scored {result.scores}, validation scored {expected}")
        return True

    def metrics(self) -> dict[str, float]:
        counters = super().metrics()
        counters[f"sandbox/{self.candidate.name}/zeroed_calls"] = float(self.failed_calls)
        counters[f"sandbox/{self.candidate.name}/restarts"] = float(self.restarts)
        return counters
