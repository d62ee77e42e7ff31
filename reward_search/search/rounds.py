"""The search's round rules, apart from Tune and threads: when a round opens, how many it proposes, when it is done.

`RoundRules` is plain state and pure decisions; `searcher.RewardSearcher` adapts it to Tune and runs each proposal
through a `ProposalExecutor` (`ThreadExecutor` in the service; tests run proposals on a virtual clock).

- ``barrier`` (the paper's semantics): round r+1 opens only when every trial of round r has finished, so its
  proposals see all of round r's results.
- ``async``: the next round opens as soon as the current one has been handed out, so slots do not wait for a
  round's slowest trial.
- ``steady``: a batch opens whenever free slots would otherwise idle (slots minus running minus queued), sized to
  fill them plus at most `max_staleness` candidates queued ahead while every slot is busy; each batch is numbered
  as a round and the budget is `rounds * per_round` accepted candidates. A batch that accepts nothing stops it.

In every mode a round whose proposing was interrupted (a resumed run) is finished first; a budget stop reason
(dollars, GPU hours) stops the search before a new round opens. The search is complete when every round (steady:
the whole candidate budget) has been proposed, or it stopped, and nothing is queued or being proposed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

MODES = ("barrier", "async", "steady")
Slot = tuple[int, str]  # (round, candidate id)


@dataclass
class RoundRules:
    """Where a search stands (rounds proposed, candidates queued, trials running) and what it does next."""

    mode: str
    rounds: int
    per_round: int
    max_staleness: int = 0
    round: int = 0  # the last round whose proposing has started
    proposed_rounds: set[int] = field(default_factory=set)  # rounds whose proposing has finished
    queue: list[Slot] = field(default_factory=list)  # candidates ready to hand out
    pending: dict[str, Slot] = field(default_factory=dict)  # trial id -> its candidate, while it runs
    accepted_total: int = 0  # candidates accepted so far (steady mode's budget is rounds * per_round)
    finished: int = 0  # trials finished in this session
    stop_reason: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"search.mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        self.max_staleness = max(0, int(self.max_staleness))

    @property
    def budget(self) -> int:
        return self.rounds * self.per_round

    def steady_want(self, slots: int) -> int:
        """How many candidates a steady batch should propose now: free slots plus the allowed lookahead."""
        free = slots + min(self.max_staleness, slots) - len(self.pending) - len(self.queue)
        return max(0, min(free, self.budget - self.accepted_total))

    def next_round(self, slots: int, budget_stop: Callable[[], str | None]) -> tuple[int, int] | None:
        """The (round, wanted) to propose now, or None; call only while no proposal runs. A budget stop reason
        ends the search instead of opening a round."""
        if self.stop_reason:
            return None
        if self.mode == "steady":
            self.proposed_rounds.add(self.round)  # a batch interrupted by a restart is not refilled
            want = self.steady_want(slots)
            return self._open(self.round + 1, want, budget_stop) if want > 0 else None
        if self.round and self.round not in self.proposed_rounds:  # resumed mid-proposal: finish that round
            return (self.round, self.per_round)
        if self.round >= self.rounds or (self.round and self._waiting()):
            return None
        return self._open(self.round + 1, self.per_round, budget_stop)

    def _waiting(self) -> bool:
        """Whether the current round holds the next one back: barrier, until it finishes; async, until handed out."""
        queued = any(r == self.round for r, _ in self.queue)
        if self.mode == "async":
            return queued
        return queued or any(r == self.round for r, _ in self.pending.values())

    def _open(self, round: int, wanted: int, budget_stop: Callable[[], str | None]) -> tuple[int, int] | None:
        reason = budget_stop()
        if reason:
            self.stop_reason = reason
            return None
        self.round = round
        return (round, wanted)

    def proposed(self, round: int, wanted: int, accepted: list[str]) -> None:
        """A round's proposing finished with the `accepted` candidate ids (queued in order)."""
        self.queue.extend((round, cid) for cid in accepted)
        self.proposed_rounds.add(round)
        self.accepted_total += len(accepted)
        if self.mode == "steady" and not accepted and wanted > 0:
            self.stop_reason = f"batch {round} accepted no candidate (see the rejections in the leaderboard)"

    def proposal_failed(self, round: int, error: str) -> None:
        """A round's proposing raised: the search stops (trials running still finish)."""
        self.stop_reason = f"proposing round {round} failed: {error}"

    def take(self) -> Slot | None:
        """The next queued candidate, removed from the queue."""
        return self.queue.pop(0) if self.queue else None

    def started(self, trial_id: str, slot: Slot) -> None:
        self.pending[trial_id] = slot

    def completed(self, trial_id: str) -> Slot | None:
        """A trial ended: its candidate (None for a trial this session did not start)."""
        slot = self.pending.pop(trial_id, None)
        if slot is not None:
            self.finished += 1
        return slot

    def searched_all(self) -> bool:
        """Whether every round (steady: the whole candidate budget) has been proposed."""
        if self.mode == "steady":
            return self.accepted_total >= self.budget
        return self.round >= self.rounds

    def complete(self, proposing: bool) -> bool:
        """Whether nothing more will be handed out: stopped or all proposed, nothing queued or being proposed."""
        return not self.queue and not proposing and bool(self.stop_reason or self.searched_all())


class ProposalExecutor(Protocol):
    """Runs one round's proposing (`work`) away from Tune's loop; `busy` while it runs."""

    @property
    def busy(self) -> bool: ...

    def submit(self, name: str, work: Callable[[], None]) -> None: ...


class ThreadExecutor:
    """The service's executor: each proposal in a daemon thread (pickles without it)."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, name: str, work: Callable[[], None]) -> None:
        self._thread = threading.Thread(target=work, name=name, daemon=True)
        self._thread.start()

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._thread = None
