"""Exact resume as a property: a search SIGKILLed at any point and resumed ends as the unkilled search does.

One reference run (module-scoped), then per kill point a real `reward-search run`, started as a session leader with
``REWARD_SEARCH_KILL_AT=<point>`` (`reward_search/ops/killpoint.py`: the driver, its local Ray and its trials are
SIGKILLed together when the point is reached), then `reward-search resume` without the variable. Compared with the
reference: the leaderboard's ids, statuses and metrics to the last digit (CPU), `finalize.json`'s numbers, and every
trial trained exactly `training.steps` steps. The default suite covers a one-round search without finalize at the
points that broke (a half-recorded proposer call, the last step's checkpoint); the all-points variant is the smoke
preset whole, at every point, run when ``REWARD_SEARCH_TEST_ALL_KILL_POINTS=1`` (it is 7 real searches with finalize,
too long for CI's suite).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from reward_search.ops.killpoint import ENV, POINTS
from reward_search.search.leaderboard import load_entries

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "experiments" / "smoke.yaml"
SHORT = ("--set", "search.rounds=1", "--set", "finalize.enabled=false")  # the default suite's search
# what differs between two runs by design: wall-clock figures, the probes' measured speed and calibrated limit, the
# sandbox's random uid and the worker's pid
VARYING = ("seconds", "per_second", "gpu_hours", "time", "finished", "created", "updated", "latency_s")
VARYING += ("ms_per_completion", "uid", "host_pid")


def _session_pids(sid: int) -> list[int]:
    """The live processes of session `sid` (the killed driver's Ray daemons and workers, if any outlived it)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _cli(args: list[str], kill_at: str | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """One real CLI command in its own session and Ray temp dir (never joining another Ray on this host)."""
    env = {k: v for k, v in os.environ.items() if k not in (ENV, "RAY_ADDRESS")}
    env["RAY_TMPDIR"] = ray_tmp = tempfile.mkdtemp(prefix="rs-kp-", dir="/tmp")  # short: Ray's socket paths
    if kill_at:
        env[ENV] = kill_at
    command = ["nice", "-n", "15", sys.executable, "-m", "reward_search.cli", *args]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        for _ in range(20):  # whatever of this session outlived the command (a killed driver's Ray), ended here
            left = _session_pids(proc.pid)
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    return subprocess.CompletedProcess(command, proc.returncode, out.decode(), err.decode())


def _unprovenanced(finalize: dict[str, Any]) -> dict[str, Any]:
    """finalize.json without where its numbers came from: the first run evaluates the base model and caches it per
    fingerprint (`search/untrained.py`), so a later run reads the same numbers from the user cache (`cached`,
    `source`), and a job finished before a kill is read back as `cached`; the numbers themselves are compared."""
    for job in finalize.get("jobs", []):  # a job a resumed finalize found finished reads as `cached` too
        job.get("result", {}).pop("cached", None)
        job.pop("cached", None)
        if job.get("kind") == "untrained":
            job.get("result", {}).pop("source", None)
    return finalize


def _untimed(value: Any, run_dir: Path) -> Any:
    """`value` without the fields that vary by design, and with the run directory's path written as <run>."""
    if isinstance(value, dict):
        return {k: _untimed(v, run_dir) for k, v in value.items() if not k.endswith(VARYING)}
    if isinstance(value, list):
        return [_untimed(v, run_dir) for v in value]
    if isinstance(value, str):
        return value.replace(str(run_dir), "<run>")
    return value


def _outcome(run_dir: Path) -> dict[str, Any]:
    """What an exact resume must reproduce: the leaderboard rows, finalize.json, every trial's steps."""
    rows = sorted((_untimed(e.__dict__, run_dir) for e in load_entries(run_dir)), key=lambda r: r["candidate_id"])
    finalize = run_dir / "finalize.json"
    results = sorted((run_dir / "trials").glob("*/result.json"))
    return {
        "leaderboard": rows,
        "finalize": _unprovenanced(_untimed(json.loads(finalize.read_text()), run_dir)) if finalize.is_file() else None,
        "steps": {p.parent.name: json.loads(p.read_text())["steps"] for p in results},
    }


def _run_args(run_dir: Path, short: bool) -> list[str]:
    return ["run", str(SMOKE), "--run-dir", str(run_dir), *(SHORT if short else ())]


def _reference(tmp: Path, short: bool) -> dict[str, Any]:
    run_dir = tmp / "reference"
    proc = _cli(_run_args(run_dir, short))
    assert proc.returncode == 0, proc.stderr[-3000:]
    outcome = _outcome(run_dir)
    assert outcome["leaderboard"] and set(outcome["steps"].values()) == {2}  # smoke trains 2 steps
    return outcome


def _killed_and_resumed(tmp: Path, point: str, short: bool) -> dict[str, Any]:
    run_dir = tmp / point
    killed = _cli(_run_args(run_dir, short), kill_at=point)
    assert killed.returncode == -signal.SIGKILL, (point, killed.returncode, killed.stderr[-3000:])
    assert not (run_dir / "finalize.json").exists()
    resumed = _cli(["resume", str(run_dir)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return _outcome(run_dir)


@pytest.fixture(scope="module")
def short_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("kill-short")
    return tmp, _reference(tmp, short=True)


@pytest.fixture(scope="module")
def full_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("kill-full")
    return tmp, _reference(tmp, short=False)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["validate"])
def test_a_search_killed_at_a_point_resumes_to_the_unkilled_search(short_reference, point):
    tmp, expected = short_reference
    got = _killed_and_resumed(tmp, point, short=True)
    assert [r["candidate_id"] for r in got["leaderboard"]] == [r["candidate_id"] for r in expected["leaderboard"]]
    assert got == expected


ALL_POINTS = "REWARD_SEARCH_TEST_ALL_KILL_POINTS"  # set to 1 to run the smoke preset at every point (7 real runs)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get(ALL_POINTS) != "1", reason=f"7 real searches with finalize: set {ALL_POINTS}=1")
@pytest.mark.parametrize("point", POINTS)
def test_the_smoke_search_killed_at_any_point_resumes_to_the_unkilled_search(full_reference, point):
    tmp, expected = full_reference
    got = _killed_and_resumed(tmp, point, short=False)
    assert [r["candidate_id"] for r in got["leaderboard"]] == [r["candidate_id"] for r in expected["leaderboard"]]
    assert got["finalize"] is not None
    assert got == expected
