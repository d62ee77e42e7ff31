"""Candidate rewards during training: a TRL reward callable that scores each batch in the candidate's worker.

`SandboxedReward(candidate, config)` has TRL's signature ``(prompts, completions, **kwargs) -> list[float | None]``
and ``__name__`` = the candidate's name (so TRL logs ``rewards/<name>/mean``). A failed call (timeout, crash,
invalid result) gives ``None`` for every completion, which TRL masks; after `max_failed_calls` failures it raises
`CandidateCrashed`, which the trainer turns into trial status ``crashed``. Every call is held to the probes'
per-completion time budget (over it counts as a failed call), and every `reprobe_every` calls one bank group
(the validated completions of one prompt, in training's chat form, drawn from the run's secret) is re-scored in
the same worker: scores that differ from validation raise `CandidateDrifted`
(trial status ``failed``), which catches a candidate that behaved only while it was being validated. It pickles
as (candidate, config) and starts its worker lazily in whichever process and thread first calls it (Ray Tune trials
run in a non-main thread).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

from reward_search.candidates.candidate import RewardCandidate
from reward_search.candidates.sandbox import CallResult, CandidateRunner
from reward_search.candidates.settings import CandidatesConfig
from reward_search.candidates.status import Status

# TRL passes these to every reward; they are not data and do not cross into the sandbox.
_NOT_FORWARDED = frozenset({"trainer_state", "completion_ids", "log_extra", "log_metric", "prompts", "completions"})


class CandidateCrashed(RuntimeError):
    """A candidate reward failed too often; its trial ends with status `crashed` and this reason."""

    status = Status.CRASHED.value

    def __init__(self, name: str, reason: str, failures: int) -> None:
        super().__init__(f"candidate reward {name!r} crashed after {failures} failed calls: {reason}")
        self.name, self.reason, self.failures = name, reason, failures


class CandidateDrifted(CandidateCrashed):
    """A spot re-probe scored differently than at validation: the candidate changed behaviour (status `failed`)."""

    status = Status.FAILED.value

    def __init__(self, name: str, reason: str) -> None:
        RuntimeError.__init__(self, f"{reason}: candidate reward {name!r} stopped")
        self.name, self.reason, self.failures = name, reason, 0


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


class SandboxedReward:
    """A candidate reward as a TRL reward function; every call runs in the sandbox."""

    def __init__(self, candidate: RewardCandidate, config: CandidatesConfig | None = None) -> None:
        self.candidate = candidate
        self.config = config or CandidatesConfig()
        self.__name__ = candidate.name
        self.__qualname__ = candidate.name
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._runner: CandidateRunner | None = None
        self._lock = threading.Lock()
        self.calls = 0
        self.failed_calls = 0
        self.failed_completions = 0
        self.timeouts = 0
        self.over_budget = 0
        self.reprobes = 0
        self.stopped: CandidateDrifted | None = None
        self.last_error: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "config": self.config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.candidate, self.config = state["candidate"], state["config"]
        self.__name__ = self.__qualname__ = self.candidate.name
        self._init_runtime()

    def _get_runner(self) -> CandidateRunner:
        with self._lock:
            if self._runner is None:
                self._runner = CandidateRunner(self.config.sandbox, self.config.policy)
            return self._runner

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        if self.stopped is not None:
            raise self.stopped
        if self.failed_calls >= self.config.max_failed_calls:
            raise CandidateCrashed(self.candidate.name, self.last_error or "unknown", self.failed_calls)
        columns = {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items() if k not in _NOT_FORWARDED}
        columns = {k: v for k, v in columns.items() if _jsonable(v)}
        runner = self._get_runner()
        result = self._budgeted(
            runner.call(self.candidate.source, self.candidate.name, prompts, completions, **columns)
        )
        with self._lock:
            self.calls += 1
            due = self.config.reprobe_every and self.calls % self.config.reprobe_every == 0
            if result.ok and result.scores is not None:
                if due:
                    self._reprobe(runner)
                return result.scores
            self.failed_calls += 1
            self.failed_completions += len(completions)
            self.timeouts += result.kind == "timeout"
            self.last_error = f"{result.kind}: {result.error}"
            failures = self.failed_calls
        if failures >= self.config.max_failed_calls:
            raise CandidateCrashed(self.candidate.name, self.last_error, failures)
        return [None] * len(completions)

    def _budgeted(self, result: CallResult) -> CallResult:
        """The per-completion time budget of the probes, on every training call: over it, the call failed."""
        budget = self.config.probes.max_ms_per_completion
        n = len(result.scores) if result.scores else 1
        if result.ok and result.elapsed_ms / n > budget:
            self.over_budget += 1
            error = f"over the time budget: {result.elapsed_ms / n:.1f} ms per completion (budget {budget:g} ms)"
            return CallResult(ok=False, error=error, kind="budget", elapsed_ms=result.elapsed_ms)
        return result

    def _reprobe(self, runner: CandidateRunner) -> None:
        """Re-score a few validated probe completions in the same worker; different scores stop the candidate."""
        rescored = self._rescore(runner)
        if rescored is None:
            return
        expected, result = rescored
        if not result.ok or result.scores != expected:
            got = result.scores if result.ok else f"{result.kind}: {result.error}"
            self._drifted(f"scored {got}, validation scored {expected}")

    def _rescore(self, runner: CandidateRunner) -> tuple[list[float], CallResult] | None:
        """The validated scores of up to `reprobe_size` probe completions and this worker's scores for them now;
        None when the candidate carries no re-probe set (a record without its probe report)."""
        probes = list((self.candidate.probe or {}).get("reprobe") or [])[: self.config.reprobe_size]
        if not probes:
            return None
        self.reprobes += 1
        result = self._budgeted(
            runner.call(
                self.candidate.source,
                self.candidate.name,
                [p["prompt"] for p in probes],
                [p["completion"] for p in probes],
                answer=[p["answer"] for p in probes],
            )
        )
        return [float(p["score"]) for p in probes], result

    def _drifted(self, what: str) -> None:
        reason = f"spot re-probe after {self.calls} calls {what}"
        self.stopped = CandidateDrifted(self.candidate.name, reason)
        raise self.stopped

    def metrics(self) -> dict[str, float]:
        """Counters for the trial's metrics (prefixed with the reward's name)."""
        prefix = f"sandbox/{self.candidate.name}"
        return {
            f"{prefix}/calls": float(self.calls),
            f"{prefix}/failed_calls": float(self.failed_calls),
            f"{prefix}/failed_completions": float(self.failed_completions),
            f"{prefix}/timeouts": float(self.timeouts),
            f"{prefix}/over_budget": float(self.over_budget),
            f"{prefix}/reprobes": float(self.reprobes),
        }

    def close(self) -> None:
        with self._lock:
            runner, self._runner = self._runner, None
        if runner is not None:
            runner.close()

    def __repr__(self) -> str:
        return f"SandboxedReward({self.candidate.name!r}, id={self.candidate.id})"
