"""Which results a round's feedback shows (pure): by mode, and none for the unguided control."""

from __future__ import annotations

from reward_search.candidates.records import LeaderboardEntry
from reward_search.candidates.status import Status
from reward_search.search.driver import feedback_results


def entry(i: int, round: int, status: Status) -> LeaderboardEntry:
    return LeaderboardEntry(f"{i:016x}", f"r{i}", round, "evolutionary", status, f"def r{i}(**kw):\n    return []\n")


BOARD = [
    entry(1, 1, Status.DONE),
    entry(2, 1, Status.FAILED),
    entry(3, 1, Status.REJECTED),
    entry(4, 2, Status.DONE),
    entry(5, 2, Status.SCREENING),
    entry(6, 3, Status.PROPOSED),
]


def test_barrier_shows_the_earlier_rounds_and_steady_every_finished_result():
    shown, results = feedback_results(BOARD, 3, "barrier", "rich")
    assert [e.name for e in shown] == ["r1", "r2", "r3", "r4", "r5"]
    assert results == [f"{i:016x}" for i in (1, 2, 4)]  # finished trials only: not the rejected, not the running
    shown, results = feedback_results(BOARD, 2, "steady", "rich")
    assert [e.name for e in shown] == ["r1", "r2", "r3", "r4"] and results == [f"{i:016x}" for i in (1, 2, 4)]


def test_the_unguided_control_is_conditioned_on_nothing():
    for mode in ("barrier", "async", "steady"):
        _, results = feedback_results(BOARD, 3, mode, "none")
        assert results == []
        _, guided = feedback_results(BOARD, 3, mode, "rich")
        assert guided  # the same board does condition a guided round
