"""A candidate's status, in one place: the candidate store, the leaderboard, the searcher and the feedback use it.

`Status` is a `StrEnum`, so a member equals its string (``Status.DONE == "done"``) and is written as that string in
JSON and Parquet; records read back hold plain strings, which compare equal to the members.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Where a candidate is in its life: validation, then its screening trial."""

    PROPOSED = "proposed"  # produced by a proposer, not yet validated
    REJECTED = "rejected"  # failed validation (policy, load or probes); `reasons` says why
    ACCEPTED = "accepted"  # validated, waiting for a screening slot
    SCREENING = "screening"  # its trial is running
    DONE = "done"  # screened and evaluated on the selection split
    FAILED = "failed"  # infrastructure failure, divergence, or a spot re-probe that disagreed with validation
    CRASHED = "crashed"  # the candidate's own fault (kept failing in the sandbox)
    STOPPED = "stopped"  # ended early by the Tune scheduler (ASHA) at the step it reached; never ranked
    # validated, never trained: the cascade (search/cascade.py) skipped it, `reasons` says why (it behaves like an
    # earlier candidate, or its pre-screen is below search.prescreen's thresholds); never ranked, never a control
    # or finalize member
    SKIPPED = "skipped"


STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
FINISHED: tuple[Status, ...] = (Status.DONE, Status.FAILED, Status.CRASHED, Status.STOPPED)  # its trial has ended
WAITING: tuple[Status, ...] = (Status.ACCEPTED, Status.SCREENING)  # validated, its trial still to run (or finish)
UNTRAINED: tuple[Status, ...] = (Status.PROPOSED, Status.REJECTED, Status.SKIPPED)  # never trained


def check_status(status: str) -> Status:
    """`status` as a `Status`; a ValueError naming the known ones otherwise."""
    try:
        return Status(status)
    except ValueError:
        raise ValueError(f"unknown status {status!r}; choose one of {', '.join(STATUSES)}") from None
