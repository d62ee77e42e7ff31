"""A Ray Tune Searcher whose "search algorithm" is a reward proposer.

`suggest()` never blocks: proposing (LLM calls, sandbox validation) runs in a background thread of the driver and
fills a queue of accepted candidates; `suggest` hands them out and returns None while the queue is empty. In
`barrier` mode (the paper's semantics) round r+1 is proposed only when every trial of round r has finished, so its
proposals see all of round r's results; in `async` mode the next round is proposed as soon as the current one has
been handed out, so slots do not wait for a round's slowest trial. Completed trials are recorded in the leaderboard
actor. The searcher's own state is plain JSON (`save`/`restore`), and it pickles without its threads.

`steady` mode keeps every slot busy and every proposal conditioned: a batch is proposed whenever free slots would
otherwise idle (slots minus running minus queued), sized to fill them, and conditioned on every result finished so
far. At most `max_staleness` candidates are proposed ahead of a free slot (queued while all slots are busy); those
are the only trials that may start on a proposal that has not seen the results finished meanwhile. Each batch is
numbered as a round; the budget is `rounds * per_round` accepted candidates.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher

from reward_search.candidates.candidate import CandidateRecordError
from reward_search.candidates.records import LeaderboardEntry
from reward_search.candidates.status import Status
from reward_search.proposers.base import ProposerError

logger = logging.getLogger(__name__)

# A function that proposes and validates candidates for one round: (round, wanted) -> accepted candidate ids.
RoundFiller = Callable[[int, int], list[str]]
MODES = ("barrier", "async", "steady")


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
    ) -> None:
        # No Tune metric: ranking is the leaderboard's job, and intermediate reports carry other metrics.
        super().__init__(metric=None, mode=None)
        if mode not in MODES:
            raise ValueError(f"search.mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.leaderboard = leaderboard
        self.fill_round = fill_round
        self.make_params = make_params
        self.rounds, self.per_round, self.search_mode = rounds, per_round, mode
        self.gpus_per_trial = gpus_per_trial
        self.budget_stop_reason = budget_stop_reason or (lambda: None)  # why to stop, or None to go on
        self.slots = slots if callable(slots) else (lambda: int(slots))
        self.max_staleness = max(0, int(max_staleness))
        self.accepted_total = 0  # candidates accepted so far (steady mode's budget is rounds * per_round)
        self.finished = 0  # trials finished in this session
        self.trace: list[dict[str, Any]] = []  # per handed-out trial: candidate, round, results finished then
        self.round = 0  # the last round whose proposing has started
        self.proposed_rounds: set[int] = set()  # rounds whose proposing has finished
        self.queue: list[tuple[int, str]] = []  # (round, candidate id) ready to hand out
        self.pending: dict[str, tuple[int, str]] = {}  # Tune trial id -> (round, candidate id)
        self.stop_reason: str | None = None
        self.scheduler_stopped: set[str] = set()  # Tune trial ids the scheduler stopped (`CheckpointASHA.stopped`)
        self._init_runtime()

    # ----------------------------------------------------------------------------------------- runtime

    def _init_runtime(self) -> None:
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in ("_lock", "_thread"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    def prime(
        self, round: int, proposed_rounds: set[int], queue: list[tuple[int, str]], accepted_total: int = 0
    ) -> None:
        """Continue a run from its run directory: the rounds already proposed and the candidates still to screen."""
        with self._lock:
            self.round = round
            self.proposed_rounds = set(proposed_rounds)
            self.queue = list(queue)
            self.accepted_total = accepted_total

    @property
    def proposing(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

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
                    self.stop_reason = f"proposing round {round} failed: {exc}"
                return
            with self._lock:
                self.queue.extend((round, cid) for cid in accepted)
                self.proposed_rounds.add(round)
                self.accepted_total += len(accepted)
                if self.search_mode == "steady" and not accepted and wanted > 0:
                    self.stop_reason = f"batch {round} accepted no candidate (see the rejections in the leaderboard)"

        self.round = round
        self._thread = threading.Thread(target=work, name=f"propose-round-{round}", daemon=True)
        self._thread.start()

    def _round_open(self, round: int) -> bool:
        """Whether `round` still has candidates queued or trials running."""
        return any(r == round for r, _ in self.queue) or any(r == round for r, _ in self.pending.values())

    @property
    def budget(self) -> int:
        return self.rounds * self.per_round

    def steady_want(self) -> int:
        """How many candidates a steady batch should propose now: free slots plus the allowed lookahead."""
        slots = self.slots()
        free = slots + min(self.max_staleness, slots) - len(self.pending) - len(self.queue)
        return max(0, min(free, self.budget - self.accepted_total))

    def _maybe_propose(self) -> None:
        if self.proposing or self.stop_reason:
            return
        if self.search_mode == "steady":
            self.proposed_rounds.add(self.round)  # a batch interrupted by a restart is not refilled
            want = self.steady_want()
            if want <= 0:
                return
            reason = self.budget_stop_reason()
            if reason:
                self.stop_reason = reason
                return
            self._start_round(self.round + 1, want)
            return
        if self.round and self.round not in self.proposed_rounds:  # resumed mid-proposal: finish that round
            self._start_round(self.round, self.per_round)
            return
        if self.round >= self.rounds:
            return
        if self.round:
            if self.search_mode == "barrier" and self._round_open(self.round):
                return
            if self.search_mode == "async" and any(r == self.round for r, _ in self.queue):
                return
        reason = self.budget_stop_reason()
        if reason:
            self.stop_reason = reason
            return
        self._start_round(self.round + 1, self.per_round)

    # ----------------------------------------------------------------------------------------- Tune hooks

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        with self._lock:
            while self.queue:
                round, cid = self.queue.pop(0)
                try:
                    params = self.make_params(self._entry(cid))
                except CandidateRecordError as exc:  # never a trial without its validated record: failed, loudly
                    self._unlaunchable(cid, str(exc))
                    continue
                self.pending[trial_id] = (round, cid)
                self.trace.append(
                    {"candidate_id": cid, "round": round, "finished_before": self.finished, "at": time.time()}
                )
                self.leaderboard.update.remote(cid, event_id=f"{trial_id}:screening", status=Status.SCREENING)
                if self.search_mode == "steady":
                    self._maybe_propose()  # refill the lookahead as soon as a queued candidate starts
                return params
            self._maybe_propose()
            if self.queue or self.proposing:
                return None
            if self.stop_reason or self.searched_all():
                return Searcher.FINISHED
            return None

    def searched_all(self) -> bool:
        """Whether every round (steady: the whole candidate budget) has been proposed."""
        if self.search_mode == "steady":
            return self.accepted_total >= self.budget
        return self.round >= self.rounds

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """An intermediate report: its dev accuracy joins the candidate's dev curve (once per step)."""
        pair = self.pending.get(trial_id)
        if pair is not None and not result.get("final") and result.get("dev_accuracy") is not None:
            event = f"{trial_id}:dev:{result.get('training_iteration', result.get('step'))}"
            self.leaderboard.append_dev_point.remote(pair[1], float(result["dev_accuracy"]), event_id=event)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        import ray

        fields = fields_from_result(result, error, self.gpus_per_trial, trial_id in self.scheduler_stopped)
        if fields["status"] == Status.STOPPED:  # Tune withholds the report that stopped it from on_trial_result
            self.on_trial_result(trial_id, result or {})
        with self._lock:
            pair = self.pending.pop(trial_id, None)
        if pair is None:
            return
        _, cid = pair
        ray.get(self.leaderboard.update.remote(cid, event_id=f"{trial_id}:complete", **fields))
        with self._lock:
            self.finished += 1
            self._maybe_propose()

    def _unlaunchable(self, cid: str, reason: str) -> None:
        """A queued candidate that cannot start (its record is missing or unreadable): failed, with the reason."""
        import ray

        logger.error("candidate %s cannot start: %s", cid, reason)
        self.errors.append(f"candidate {cid}: {reason}")
        self.finished += 1
        ray.get(
            self.leaderboard.update.remote(cid, event_id=f"{cid}:unlaunchable", status=Status.FAILED, reasons=[reason])
        )

    def _entry(self, cid: str) -> LeaderboardEntry:
        import ray

        entry = ray.get(self.leaderboard.get.remote(cid))
        if entry is None:
            raise KeyError(f"candidate {cid} is not on the leaderboard")
        return entry

    # ----------------------------------------------------------------------------------------- save / restore

    def get_state(self) -> dict[str, Any]:
        with self._lock:
            in_flight = list(self.pending.values())
            return {
                "round": self.round,
                "proposed_rounds": sorted(self.proposed_rounds),
                # Trials in flight go back to the queue: on restore they are resumed (or returned from cache).
                "queue": [list(p) for p in in_flight + self.queue],
                "stop_reason": self.stop_reason,
                "accepted_total": self.accepted_total,
            }

    def set_state(self, state: dict[str, Any]) -> None:
        with self._lock:
            self.round = int(state["round"])
            self.proposed_rounds = set(state["proposed_rounds"])
            self.queue = [(int(r), str(c)) for r, c in state["queue"]]
            self.pending = {}
            self.stop_reason = state.get("stop_reason")
            self.accepted_total = int(state.get("accepted_total", 0))

    def save(self, checkpoint_path: str) -> None:
        from reward_search import io

        io.write_json(checkpoint_path, self.get_state())

    def restore(self, checkpoint_path: str) -> None:
        self.set_state(json.loads(Path(checkpoint_path).read_text()))


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
