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
from collections.abc import Callable
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


def _interrupt_driver(message: str) -> None:
    """The heartbeat could not keep the lease: stop this driver as Ctrl-C does (Tune saves its state, the run
    directory stays resumable) rather than let it run on under a lease another host may take."""
    import signal
    import sys

    print(f"reward-search: error: {message}; stopping this driver", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGINT)


class RunLease:
    """`with RunLease(run_dir, run_id):` holds the lease (heartbeat in a daemon thread) and releases it on exit.

    The heartbeat (every ttl/3) survives I/O errors: one warning line per failing spell, then it retries. When it
    still fails a beat later (before the lease would look stale to another host, ttl after the last write), or finds
    the lease taken over, it calls `on_lost` with one line (by default: print it and interrupt the driver, as
    Ctrl-C does), so a driver never runs on unleased without saying so.
    """

    def __init__(
        self,
        run_dir: Path,
        run_id: str,
        ttl: float = DEFAULT_TTL,
        on_lost: Callable[[str], None] = _interrupt_driver,
    ) -> None:
        self.path = Path(run_dir) / LEASE_FILE
        self.run_id, self.ttl, self.on_lost = run_id, ttl, on_lost
        self.holder: Holder | None = None
        self.took_over: Holder | None = None  # the stale holder replaced, if any
        self.lost: str | None = None  # why the heartbeat stopped, when it did before release
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refuse_if_held(self) -> None:
        """UserError naming the holder when a live process (another driver, a finalize) holds the lease."""
        current = self.read()
        if current is not None and current.alive(self.ttl):
            raise UserError(
                f"{self.path.parent}: another driver is running this run directory ({current.describe()}); "
                "stop it first (`reward-search jobs stop ID`), or wait for it to finish"
            )

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
            self.refuse_if_held()
            current = self.read()
            # Stale (or unreadable): move it aside atomically; only one contender's rename succeeds.
            aside = self.path.with_name(f".{LEASE_FILE}.{secrets.token_hex(4)}.stale")
            try:
                os.rename(self.path, aside)
            except FileNotFoundError:
                continue
            aside.unlink(missing_ok=True)
            self.took_over = current
        raise UserError(f"{self.path}: could not take the lease (another driver keeps taking it)")

    def _beat_once(self) -> str | None:
        """Refresh the heartbeat; why the lease is lost when it is (raises OSError when the write fails)."""
        current = self.read()
        if self.holder is None:
            return None
        if current is None and self.path.exists():
            raise OSError(f"{self.path} could not be read")
        if current is None or current.token != self.holder.token:
            holder = f" by {current.describe()}" if current is not None else ""
            return f"the lease on {self.path.parent} was removed or taken over{holder}"
        self.holder = Holder(**{**asdict(self.holder), "heartbeat": time.time()})
        io.write_json(self.path, asdict(self.holder))
        return None

    def _heartbeat(self) -> None:
        import sys

        failed = 0  # consecutive failed beats
        while not self._stop.wait(self.ttl / 3):
            try:
                lost = self._beat_once()
                failed = 0
            except Exception as exc:  # an I/O error (a full disk, a flaky mount): say so once, then retry
                failed += 1
                if failed == 1:
                    print(f"reward-search: warning: lease heartbeat: {exc}; retrying", file=sys.stderr, flush=True)
                # a second failed beat stops the driver before the lease looks stale (ttl after the last write)
                lost = (
                    f"the lease heartbeat of {self.path} failed {failed} times in a row ({exc})" if failed > 1 else None
                )
            if lost is not None:
                self.lost = lost
                if not self._stop.is_set():
                    self.on_lost(lost)
                return

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._heartbeat, name="run-lease-heartbeat", daemon=True)
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


def driver_line(run_dir: Path, ttl: float = DEFAULT_TTL) -> str:
    """`status`'s line on the run directory's driver: running (the live lease holder), gone (a lease whose holder
    died, e.g. a SIGKILLed driver: the run is not progressing), or none."""
    lease = RunLease(run_dir, "", ttl)
    holder = lease.read()
    if holder is None:
        return "driver: none running" + (" (lease.json does not read)" if lease.path.exists() else "")
    if holder.alive(ttl):
        return f"driver: running ({holder.describe()})"
    beat = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(holder.heartbeat))
    return (
        f"driver: gone: the lease holder ({holder.describe()}) no longer runs (last heartbeat {beat}); nothing is "
        f"progressing, `reward-search resume {run_dir}` continues the run"
    )
