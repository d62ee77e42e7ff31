"""A Ray Tune Searcher whose "search algorithm" is a reward proposer: a thin adapter over `rounds.RoundRules`.

`suggest()` never blocks: proposing (LLM calls, sandbox validation) runs through a `ProposalExecutor` (a background
thread of the driver) and fills the rules' queue of accepted candidates; `suggest` hands them out and returns None
while the queue is empty. When a round opens and how many it proposes (barrier, async, steady) are the rules';
finished trials are recorded in the leaderboard actor. The run directory is the resume point (`prime`), so Tune's
`save`/`restore` keep nothing; the searcher pickles without its lock and thread.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ray.tune.search import Searcher

from reward_search.candidates.candidate import CandidateRecordError
from reward_search.candidates.records import LeaderboardEntry
from reward_search.candidates.status import Status
from reward_search.proposers.base import ProposerError
from reward_search.search.rounds import MODES, ProposalExecutor, RoundRules, Slot, ThreadExecutor

logger = logging.getLogger(__name__)

# A function that proposes and validates candidates for one round: (round, wanted) -> accepted candidate ids.
RoundFiller = Callable[[int, int], list[str]]
__all__ = ["MODES", "RewardSearcher", "RoundFiller", "fields_from_result"]


class RewardSearcher(Searcher):
    """Hands out validated candidates round by round and records finished trials in the leaderboard."""

    def __init__(
        self,
        leaderboard: Any,
        fill_round: RoundFiller,
        make_params: Callable[[LeaderboardEntry], dict[str, Any]],
        rounds: int,
        per_round: int,
        mode: str = "barrier",
        gpus_per_trial: float = 0.0,
        budget_stop_reason: Callable[[], str | None] | None = None,
        slots: Callable[[], int] | int = 1,
        max_staleness: int = 0,
        executor: ProposalExecutor | None = None,
    ) -> None:
        # No Tune metric: ranking is the leaderboard's job, and intermediate reports carry other metrics.
        super().__init__(metric=None, mode=None)
        self.rules = RoundRules(mode, rounds, per_round, max_staleness)
        self.leaderboard = leaderboard
        self.fill_round = fill_round
        self.make_params = make_params
        self.gpus_per_trial = gpus_per_trial
        self.budget_stop_reason = budget_stop_reason or (lambda: None)  # why to stop, or None to go on
        self.slots = slots if callable(slots) else (lambda: int(slots))
        self.executor = executor or ThreadExecutor()
        self.trace: list[dict[str, Any]] = []  # per handed-out trial: candidate, round, results finished then
        self.scheduler_stopped: set[str] = set()  # Tune trial ids the scheduler stopped (`CheckpointASHA.stopped`)
        self.errors: list[str] = []
        self._lock = threading.RLock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def prime(self, round: int, proposed_rounds: set[int], queue: list[Slot], accepted_total: int = 0) -> None:
        """Continue a run from its run directory: the rounds already proposed and the candidates still to screen."""
        with self._lock:
            self.rules.round = round
            self.rules.proposed_rounds = set(proposed_rounds)
            self.rules.queue = list(queue)
            self.rules.accepted_total = accepted_total

    @property
    def stop_reason(self) -> str | None:
        return self.rules.stop_reason

    @property
    def proposing(self) -> bool:
        return self.executor.busy

    def searched_all(self) -> bool:
        """Whether every round (steady: the whole candidate budget) has been proposed."""
        return self.rules.searched_all()

    def _start_round(self, round: int, wanted: int) -> None:
        def work() -> None:
            try:
                accepted = self.fill_round(round, wanted)
            except Exception as exc:  # a proposer failure must not kill Tune's loop; the run stops cleanly
                if isinstance(exc, ProposerError):  # an expected stop (empty round, budget): the driver says why
                    logger.debug("proposing round %d stopped: %s", round, exc)
                else:
                    logger.exception("proposing round %d failed", round)
                with self._lock:
                    self.errors.append(f"round {round}: {type(exc).__name__}: {exc}")
                    self.rules.proposal_failed(round, str(exc))
                return
            with self._lock:
                self.rules.proposed(round, wanted, accepted)

        self.executor.submit(f"propose-round-{round}", work)

    def _maybe_propose(self) -> None:
        if self.proposing:
            return
        opened = self.rules.next_round(self.slots(), self.budget_stop_reason)
        if opened is not None:
            self._start_round(*opened)

    # ----------------------------------------------------------------------------------------- Tune hooks

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        with self._lock:
            while (slot := self.rules.take()) is not None:
                round, cid = slot
                try:
                    params = self.make_params(self._entry(cid))
                except CandidateRecordError as exc:  # never a trial without its validated record: failed, loudly
                    self._unlaunchable(cid, str(exc))
                    continue
                self.rules.started(trial_id, slot)
                self.trace.append(
                    {"candidate_id": cid, "round": round, "finished_before": self.rules.finished, "at": time.time()}
                )
                self.leaderboard.update.remote(cid, event_id=f"{trial_id}:screening", status=Status.SCREENING)
                if self.rules.mode == "steady":
                    self._maybe_propose()  # refill the lookahead as soon as a queued candidate starts
                return params
            self._maybe_propose()
            return Searcher.FINISHED if self.rules.complete(self.proposing) else None

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """An intermediate report: its dev accuracy joins the candidate's dev curve (once per step)."""
        slot = self.rules.pending.get(trial_id)
        if slot is not None and not result.get("final") and result.get("dev_accuracy") is not None:
            event = f"{trial_id}:dev:{result.get('training_iteration', result.get('step'))}"
            self.leaderboard.append_dev_point.remote(slot[1], float(result["dev_accuracy"]), event_id=event)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        import ray

        fields = fields_from_result(result, error, self.gpus_per_trial, trial_id in self.scheduler_stopped)
        if fields["status"] == Status.STOPPED:  # Tune withholds the report that stopped it from on_trial_result
            self.on_trial_result(trial_id, result or {})
        with self._lock:
            slot = self.rules.completed(trial_id)
        if slot is None:
            return
        ray.get(self.leaderboard.update.remote(slot[1], event_id=f"{trial_id}:complete", **fields))
        with self._lock:
            self._maybe_propose()

    def _unlaunchable(self, cid: str, reason: str) -> None:
        """A queued candidate that cannot start (its record is missing or unreadable): failed, with the reason."""
        import ray

        logger.error("candidate %s cannot start: %s", cid, reason)
        self.errors.append(f"candidate {cid}: {reason}")
        self.rules.finished += 1
        ray.get(
            self.leaderboard.update.remote(cid, event_id=f"{cid}:unlaunchable", status=Status.FAILED, reasons=[reason])
        )

    def _entry(self, cid: str) -> LeaderboardEntry:
        import ray

        entry = ray.get(self.leaderboard.get.remote(cid))
        if entry is None:
            raise KeyError(f"candidate {cid} is not on the leaderboard")
        return entry

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: a resumed search continues from its run directory (`prime`), not from Tune's state."""

    def restore(self, checkpoint_path: str) -> None:
        """Nothing to restore (see `save`)."""


def fields_from_result(
    result: dict[str, Any] | None, error: bool, gpus_per_trial: float, stopped: bool = False
) -> dict[str, Any]:
    """Leaderboard fields from a trial's final report, its error, or (`stopped`: Tune's scheduler stopped it) its last
    report: `stopped` at the step it reached. Any other trial without a final report failed."""
    if not error and stopped and result and not result.get("final"):
        return _stopped_fields(result)
    if error or not result or not result.get("final"):
        reason = (result or {}).get("error") or "the trial errored (infrastructure) after Tune's retries"
        return {"status": Status.FAILED, "reasons": [str(reason)]}
    status = str(result.get("status", Status.FAILED))
    fields: dict[str, Any] = {
        "status": status,
        "trial_key": result.get("trial_key"),
        "trial_dir": result.get("trial_dir"),
        "steps": _step(result),
    }
    if result.get("error"):
        fields["reasons"] = [str(result["error"])]
    train_seconds = float(result.get("train_seconds") or 0.0)
    fields["train_seconds"] = train_seconds
    # The trial's own count (whole wall time x GPUs Ray granted); the config's share for reports that lack it.
    reported = result.get("gpu_hours")
    fields["gpu_hours"] = float(reported) if reported is not None else train_seconds * gpus_per_trial / 3600.0
    if status == Status.DONE:
        fields.update(
            accuracy=result.get("selection_accuracy"),
            f1=result.get("selection_f1"),
            extraction_rate=result.get("selection_extraction_rate"),
            correct=result.get("selection_correct"),
            n=result.get("selection_n"),
            gold_logprob=result.get("selection_gold_logprob"),
            selection_split=result.get("selection_split", "dev"),
        )
    summary = result.get("curve_summary_json")
    if summary:
        fields["curve_summary"] = json.loads(summary)
    return fields


def _step(result: dict[str, Any]) -> int | None:
    step = result.get("step", result.get("training_iteration"))
    return None if step is None else int(step)


def _stopped_fields(result: dict[str, Any]) -> dict[str, Any]:
    """A trial stopped by the scheduler: its step and the dev accuracy it reached there (never ranked)."""
    step = _step(result)
    reached = result.get("dev_accuracy")
    where = f"after step {step}" if step is not None else "before its first report"
    reason = f"stopped early by the Tune scheduler (ASHA) {where}"
    if reached is not None:
        reason += f", dev accuracy {float(reached):.3f} on the report subset"
    return {"status": Status.STOPPED, "steps": step, "reasons": [reason]}
