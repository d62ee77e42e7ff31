"""Faults through the real CLI: bounded waits on a cluster address, token authentication named, leases honoured."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from reward_search.config import dump_config, load_config
from reward_search.testing.local_head import free_port

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "experiments" / "smoke.yaml"
CLI = [sys.executable, "-m", "reward_search.cli"]
TIMEOUT_S = 2.0


def _cli(argv: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    return done.returncode, done.stderr, time.monotonic() - started


def _one_error_line(err: str) -> str:
    errors = [line for line in err.splitlines() if line.startswith("reward-search: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def _stored_run(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(dump_config(load_config(SMOKE)))
    return folder


@pytest.mark.slow
def test_an_address_where_nothing_listens_fails_in_bounded_time_before_writing(tmp_path):
    """`run`, `resume`, `finalize` and `status --address`: one line naming the address, exit 2, within the
    connect timeout (flag or environment) plus start-up, and no run directory created or changed."""
    port = free_port()  # bound and released: nothing listens there
    address = f"127.0.0.1:{port}"
    resumed = _stored_run(tmp_path / "stored")
    env = {**os.environ, "REWARD_SEARCH_CONNECT_TIMEOUT": str(TIMEOUT_S)}
    env.pop("RAY_ADDRESS", None)
    commands = {
        "run": ["run", str(SMOKE), "--run-dir", str(tmp_path / "new"), "--address", address],
        "resume": ["resume", str(resumed), "--address", address, "--connect-timeout", str(TIMEOUT_S)],
        "finalize": ["finalize", str(resumed), "--address", address],
        "status": ["status", "--address", address, "--connect-timeout", str(TIMEOUT_S)],
        "status RUN": ["status", "some-run", "--address", address],
    }
    for name, argv in commands.items():
        code, err, seconds = _cli(argv, env)
        assert code == 2, (name, err)
        line = _one_error_line(err)
        assert f"--address {address}: no Ray cluster answered at {address} within {TIMEOUT_S:g} s" in line, line
        assert "--connect-timeout" in line
        assert TIMEOUT_S <= seconds < TIMEOUT_S + 45, (name, seconds)  # the timeout plus start-up on a busy host
    assert not (tmp_path / "new").exists()  # checked before the run directory is created
    assert sorted(p.name for p in resumed.iterdir()) == ["config.yaml"]


def test_the_wait_itself_is_the_connect_timeout():
    from reward_search.errors import UserError
    from reward_search.search.tuner import check_reachable

    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(UserError, match=f"no Ray cluster answered at {address} within 1 s"):
        check_reachable(address, 1.0)
    assert 1.0 <= time.monotonic() - started < 1.6
    started = time.monotonic()
    with pytest.raises(UserError, match="unknown host 'no-such-host.invalid'"):
        check_reachable("no-such-host.invalid:6379", 30.0)  # a name that cannot resolve fails at once
    assert time.monotonic() - started < 10


def test_a_bad_connect_timeout_is_one_line():
    code, err, _ = _cli(["status", "--address", "127.0.0.1:1", "--connect-timeout", "0"])
    assert code == 2 and "--connect-timeout 0: must be more than 0 seconds" in _one_error_line(err)
    env = {**os.environ, "REWARD_SEARCH_CONNECT_TIMEOUT": "soon"}
    code, err, _ = _cli(["status", "--address", "127.0.0.1:1"], env)
    assert code == 2 and "$REWARD_SEARCH_CONNECT_TIMEOUT='soon'" in _one_error_line(err)


@pytest.mark.slow
def test_status_against_a_token_cluster_without_a_token_names_the_token():
    """Ray 2.60's token authentication: `status --address` without a token says so (it said "cannot connect")."""
    from reward_search.errors import UserError
    from reward_search.testing.local_head import LocalHead

    head = LocalHead(num_cpus=1)
    try:
        try:
            head.start(timeout=300)  # a busy 2-core host can take over a minute
        except UserError as exc:  # Ray's dashboard has its own start-up limit, which a loaded host can miss
            pytest.skip(f"no local Ray head on this host now: {str(exc)[:200]}")
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env["HOME"] = tempfile.mkdtemp()  # no ~/.ray/auth_token
        code, err, seconds = _cli(["status", "--address", head.gcs_address], env, timeout=300)
    finally:
        head.stop()
    assert code == 2, err
    line = _one_error_line(err)
    assert f"the Ray cluster at {head.gcs_address} requires token authentication and no token was found" in line
    assert "RAY_AUTH_TOKEN" in line
    assert "gcs_client" not in err  # Ray's per-second retry warnings stay off the console
    assert seconds < 120  # Ray's own retries against a refused token take about 25 s on an idle host


def _held_by_another_process(run: Path) -> subprocess.Popen:
    """A live process (not this one) recorded as the lease holder of `run`."""
    import json
    import socket
    from dataclasses import asdict

    from reward_search.search.lease import LEASE_FILE, Holder, _process_start

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    start = None
    for _ in range(100):  # its /proc entry appears at once; its start time is what pid reuse is checked by
        start = _process_start(other.pid)
        if start is not None:
            break
        time.sleep(0.05)
    now = time.time()
    holder = Holder("f" * 16, "other-run", socket.gethostname(), other.pid, start, None, now, now)
    (run / LEASE_FILE).write_text(json.dumps(asdict(holder)) + "\n")
    return other


def test_finalize_and_resume_refuse_a_run_directory_another_process_leases(tmp_path):
    run = _stored_run(tmp_path / "run")
    config_before = (run / "config.yaml").read_text()
    other = _held_by_another_process(run)
    try:
        for argv in (["finalize", str(run)], ["resume", str(run), "--set", "search.rounds=3"]):
            code, err, _ = _cli(argv)
            assert code == 2, err
            line = _one_error_line(err)
            assert "another driver is running this run directory" in line and f"pid {other.pid}" in line, line
        assert (run / "config.yaml").read_text() == config_before  # resume --set wrote nothing
        assert not (run / "finalize.json").exists()
    finally:
        other.kill()
        other.wait()


def test_the_heartbeat_survives_io_errors_and_stops_the_driver_when_they_last(tmp_path, monkeypatch, capsys):
    from reward_search import io
    from reward_search.search.lease import RunLease

    real_write = io.write_json
    failures = {"left": 1}

    def flaky(path, data):
        if failures["left"] > 0:
            failures["left"] -= 1
            raise OSError(28, "No space left on device")
        return real_write(path, data)

    monkeypatch.setattr(io, "write_json", flaky)
    lost: list[str] = []
    lease = RunLease(tmp_path, "run-x", ttl=0.6, on_lost=lost.append)
    with lease:
        first = lease.holder.heartbeat
        time.sleep(1.2)  # one failed beat, then beats that write again
        assert lease._thread.is_alive() and not lost
        assert lease.read().heartbeat > first
        failures["left"] = 100  # now every write fails
        deadline = time.monotonic() + 5
        while not lost and time.monotonic() < deadline:
            time.sleep(0.05)
    assert lost and "failed 2 times in a row (" in lost[0] and "No space left on device" in lost[0]
    err = capsys.readouterr().err
    assert err.count("reward-search: warning: lease heartbeat:") == 2  # one line per failing spell


FULL_DISK = """
import errno, os, sys
def full(fd):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
os.fsync = full  # every atomic write of the run directory now meets a full disk
from reward_search.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_full_disk_is_one_line_with_its_own_exit_status_and_leaves_the_run_as_it_was(tmp_path):
    from reward_search.errors import DISK_FULL_EXIT

    run = _stored_run(tmp_path / "run")
    before = (run / "config.yaml").read_text()
    argv = ["resume", str(run), "--set", "search.rounds=3"]  # resume --set rewrites config.yaml first
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, *argv], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert done.returncode == DISK_FULL_EXIT == 28, done.stderr
    line = _one_error_line(done.stderr)
    assert f"no space left on the device of {run / 'config.yaml'} while writing it; free space and" in line, line
    assert (run / "config.yaml").read_text() == before  # atomic: the old file, whole
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml"]  # no temp file left behind


def test_the_disk_full_line_is_found_through_wrapped_errors():
    import errno

    from reward_search.cli import disk_full_message

    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "/runs/x/leaderboard.parquet")
        except OSError as inner:
            raise RuntimeError("actor died") from inner
    except RuntimeError as outer:
        wrapped = outer
    assert "/runs/x/leaderboard.parquet while writing it" in disk_full_message(wrapped)
    assert disk_full_message(ValueError("nothing of the kind")) is None


def test_status_says_whether_the_lease_holder_still_runs(tmp_path, capsys):
    from reward_search.cli import main

    run = _stored_run(tmp_path / "run")
    assert main(["status", str(run)]) == 0
    assert "driver: none running" in capsys.readouterr().out
    other = _held_by_another_process(run)
    try:
        assert main(["status", str(run)]) == 0
        assert f"driver: running (run other-run, pid {other.pid} on" in capsys.readouterr().out
    finally:
        other.kill()
        other.wait()
    assert main(["status", str(run)]) == 0  # SIGKILLed: its lease.json stays behind
    out = capsys.readouterr().out
    assert f"driver: gone: the lease holder (run other-run, pid {other.pid} on" in out
    assert f"nothing is progressing, `reward-search resume {run}` continues the run" in out
