"""A fault-injection hook for the kill-at-every-point test: inert unless ``REWARD_SEARCH_KILL_AT`` names a point.

`kill_point(name)` SIGKILLs the whole session of the calling process when ``REWARD_SEARCH_KILL_AT=<name>``: the
driver, the local Ray it started and its trial workers (they share the driver's session and inherit its
environment). `tests/test_kill_points.py` starts `reward-search run` as a session leader with the variable set, then
resumes without it. Never set it by hand in a shell: the kill would take that shell's session too.

The points (where they are reached):
- ``propose``: the driver, right after a proposer call returned, before any of its candidates is validated;
- ``validate``: the driver, right after the first candidate of a call was validated and recorded;
- ``step``: a trial, right after a checkpoint before its last step; ``last-step``: right after its last checkpoint;
- ``evaluate``: a trial, after its selection evaluation was written, before ``result.json``;
- ``finalize``: the driver, after finalize's recipe jobs ran, before its seed jobs and ``finalize.json``.
"""

from __future__ import annotations

import os
import signal

ENV = "REWARD_SEARCH_KILL_AT"
POINTS = ("propose", "validate", "step", "last-step", "evaluate", "finalize")


def kill_point(name: str) -> None:
    """SIGKILL this process's session (and its own process group) when the hook variable names `name`."""
    if os.environ.get(ENV) != name:
        return
    for group in {os.getpgid(0), os.getsid(0)}:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:  # a session leader that already exited has no group of that id
            continue
    os.kill(os.getpid(), signal.SIGKILL)
