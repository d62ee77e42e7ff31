"""A lease on a run directory: one live driver per run directory, so a resubmitted job cannot run beside the first.

The holder writes `lease.json` (host, pid and the process's start time, Ray job id, run id) with an exclusive
create, and refreshes a heartbeat in it. Another driver is refused while the holder lives. A lease is stale, and is
taken over, when its holder's process is gone (same host: the pid no longer runs the same process) or its heartbeat
is older than `ttl` seconds (another host, e.g. a job whose node died).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reward_search import io
from reward_search.errors import UserError

LEASE_FILE = "lease.json"
DEFAULT_TTL = 90.0


def _process_start(pid: int) -> str | None:
    """The kernel's start time of process `pid` (guards against pid reuse); None when it does not run."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "?"
        return "?"


@dataclass(frozen=True)
class Holder:
    """Who holds a run directory's lease."""

    token: str
    run_id: str
    host: str
    pid: int
    pid_start: str | None
    job_id: str | None
    since: float
    heartbeat: float

    @classmethod
    def me(cls, run_id: str) -> Holder:
        now = time.time()
        job = os.environ.get("RAY_JOB_SUBMISSION_ID") or os.environ.get("RAY_JOB_ID")
        pid = os.getpid()
        return cls(secrets.token_hex(8), run_id, socket.gethostname(), pid, _process_start(pid), job, now, now)

    def alive(self, ttl: float, now: float | None = None) -> bool:
        """Whether the holder still runs: its process on this host, else a fresh heartbeat."""
        if self.host == socket.gethostname():
            start = _process_start(self.pid)
            return start is not None and (self.pid_start in (None, "?") or start in ("?", self.pid_start))
        return (time.time() if now is None else now) - self.heartbeat < ttl

    def describe(self) -> str:
        job = f", job {self.job_id}" if self.job_id else ""
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.since))
        return f"run {self.run_id}, pid {self.pid} on {self.host}{job}, since {since}"


class RunLease:
    """`with RunLease(run_dir, run_id):` holds the lease (heartbeat in a daemon thread) and releases it on exit."""

    def __init__(self, run_dir: Path, run_id: str, ttl: float = DEFAULT_TTL) -> None:
        self.path = Path(run_dir) / LEASE_FILE
        self.run_id, self.ttl = run_id, ttl
        self.holder: Holder | None = None
        self.took_over: Holder | None = None  # the stale holder replaced, if any
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def read(self) -> Holder | None:
        try:
            return Holder(**json.loads(self.path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def _create(self, holder: Holder) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(asdict(holder)) + "\n")
        return True

    def acquire(self) -> Holder:
        """Take the lease, taking over a stale one; UserError naming the holder when a live driver has it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = Holder.me(self.run_id)
        for _ in range(5):
            if self._create(me):
                self.holder = me
                self._start_heartbeat()
                return me
            current = self.read()
            if current is not None and current.alive(self.ttl):
                raise UserError(
                    f"{self.path.parent}: another driver is running this run directory ({current.describe()}); "
                    "stop it first (`reward-search jobs stop ID`), or wait for it to finish"
                )
            # Stale (or unreadable): move it aside atomically; only one contender's rename succeeds.
            aside = self.path.with_name(f".{LEASE_FILE}.{secrets.token_hex(4)}.stale")
            try:
                os.rename(self.path, aside)
            except FileNotFoundError:
                continue
            aside.unlink(missing_ok=True)
            self.took_over = current
        raise UserError(f"{self.path}: could not take the lease (another driver keeps taking it)")

    def _start_heartbeat(self) -> None:
        def beat() -> None:
            while not self._stop.wait(self.ttl / 3):
                current = self.read()
                if self.holder is None or current is None or current.token != self.holder.token:
                    return  # taken over: stop writing
                self.holder = Holder(**{**asdict(self.holder), "heartbeat": time.time()})
                io.write_json(self.path, asdict(self.holder))

        self._stop.clear()
        self._thread = threading.Thread(target=beat, name="run-lease-heartbeat", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        current = self.read()
        if self.holder is not None and current is not None and current.token == self.holder.token:
            self.path.unlink(missing_ok=True)
        self.holder = None

    def __enter__(self) -> RunLease:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
