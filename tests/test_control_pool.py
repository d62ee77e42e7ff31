"""The random control's pool (pure): validated candidates, less the ones their own trial showed to be bad."""

from __future__ import annotations

import dataclasses

from reward_search.candidates.records import LeaderboardEntry
from reward_search.candidates.rewards import CandidateDrifted
from reward_search.candidates.status import Status
from reward_search.search.finalize import control_pool


def entry(i: int, status: Status, reasons: tuple[str, ...] = ()) -> LeaderboardEntry:
    return LeaderboardEntry(
        candidate_id=f"{i:016x}",
        name=f"r{i}",
        round=1,
        proposer="evolutionary",
        status=status,
        source=f"def r{i}(prompts, completions, **kw):\n    return [0.0 for _ in completions]\n",
        reasons=list(reasons),
    )


def test_the_pool_drops_unvalidated_crashed_and_reprobe_failed_rewards():
    drifted = CandidateDrifted("r6", "spot re-probe after 8 calls scored [1.0], validation scored [0.0]")
    board = [
        entry(1, Status.DONE),
        entry(2, Status.REJECTED, ("probe: uninformative",)),
        entry(3, Status.PROPOSED),
        entry(4, Status.CRASHED, ("candidate reward 'r4' crashed after 3 failed calls",)),
        entry(5, Status.FAILED, ("trial lost: node died",)),  # infrastructure: the reward itself is not to blame
        entry(6, Status.FAILED, (drifted.reason,)),  # the reason the trial records for a drifted reward
        entry(7, Status.STOPPED, ("stopped by ASHA at step 2",)),
        entry(8, Status.ACCEPTED),
    ]
    assert [e.name for e in control_pool(board)] == ["r1", "r5", "r7", "r8"]
    # the rule reads the status and the reasons, not the name: the same rows renamed give the same pool
    renamed = [dataclasses.replace(e, name=f"x{e.name}") for e in board]
    assert [e.candidate_id for e in control_pool(renamed)] == [e.candidate_id for e in control_pool(board)]
