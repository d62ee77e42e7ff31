"""Process-isolated execution of candidate rewards: one hardened worker process per candidate.

The parent (driver, trainer, CLI) never executes candidate code. It starts `worker.py` through a `SandboxBackend`,
talks JSON lines over two dedicated pipes, enforces every wall-clock deadline itself by killing the worker (no
SIGALRM, so it works from any thread), accepts only numbers and null back, and replaces dead workers on the next
call. What is enforced where is documented in SANDBOX.md.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from reward_search.candidates.escape import shown
from reward_search.candidates.oslayers import pyseccomp_path
from reward_search.candidates.settings import PolicyConfig, SandboxConfig

WORKER_PATH = Path(__file__).with_name("worker.py")


class SandboxError(RuntimeError):
    """The sandbox itself could not be used (e.g. the worker failed to start)."""


@dataclass(frozen=True)
class WorkerSpec:
    """How to start one worker: the argv, its (scrubbed) environment, working directory and pipe fds to pass."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str
    pass_fds: tuple[int, ...]


class SandboxBackend(ABC):
    """Starts worker processes. Subclass and register to wrap them in a stronger isolator (nsjail, bwrap)."""

    name: ClassVar[str]

    @abstractmethod
    def spawn(self, spec: WorkerSpec) -> subprocess.Popen:
        """Start the worker described by `spec` with stdin, stdout and stderr on /dev/null."""


class ProcessBackend(SandboxBackend):
    """A plain child process; the worker hardens itself (rlimits, netns, uid drop, audit hook) before loading."""

    name = "process"

    def spawn(self, spec: WorkerSpec) -> subprocess.Popen:
        return subprocess.Popen(
            spec.argv,
            env=dict(spec.env),
            cwd=spec.cwd,
            pass_fds=spec.pass_fds,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # terminal signals to the parent's group do not reach the worker
            close_fds=True,
        )


BACKENDS: dict[str, type[SandboxBackend]] = {}


def register_backend(cls: type[SandboxBackend]) -> type[SandboxBackend]:
    """Class decorator: make a backend selectable by `SandboxConfig.backend`."""
    BACKENDS[cls.name] = cls
    return cls


register_backend(ProcessBackend)


def make_backend(name: str) -> SandboxBackend:
    try:
        return BACKENDS[name]()
    except KeyError:
        raise SandboxError(f"unknown sandbox backend {name!r}; known: {', '.join(sorted(BACKENDS))}") from None


def scrubbed_env() -> dict[str, str]:
    """The worker's whole environment: nothing inherited (no API keys), a fixed hash seed for determinism."""
    return {"PATH": os.defpath, "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0"}


@dataclass(frozen=True)
class CallResult:
    """One sandbox call: `scores` when ok; otherwise `kind` (error / timeout / crash) and a one-line `error`."""

    ok: bool
    scores: list[float | None] | None = None
    error: str | None = None
    kind: str = "ok"
    # Both measured by the parent, never taken from the reply: elapsed from the first byte of the request written
    # to the last byte of the reply read; CPU from the kernel's accounting of the worker process (None where the
    # parent cannot read it).
    elapsed_ms: float = 0.0
    wall_ms: float = 0.0  # the whole call, encoding and decoding included
    cpu_ms: float | None = None


def _reject_constant(token: str) -> Any:
    raise ValueError(f"non-finite number {token} in reply")


def decode_scores(raw: Any, n: int, cap: float) -> tuple[list[float | None] | None, str | None]:
    """Validate a reply's scores in the parent: a list of n finite numbers (|x| <= cap) or nulls, nothing else.

    Returns (scores, None) or (None, reason); never raises, whatever `raw` is (huge ints, subclasses, nesting).
    """
    if type(raw) is not list or len(raw) != n:
        return None, "worker reply is not a list of numbers"
    scores: list[float | None] = []
    for i, value in enumerate(raw):
        if value is None:
            scores.append(None)
            continue
        if type(value) not in (int, float):
            return None, f"score {i} is not a number"
        if type(value) is int and abs(value) > cap:  # before float(): an int may be too large for a float
            return None, f"score {i} is beyond the magnitude cap {cap:g}"
        number = float(value)
        if not math.isfinite(number) or abs(number) > cap:
            return None, f"score {i} is {number:g}, beyond the magnitude cap {cap:g}"
        scores.append(number)
    return scores, None


class _Spawner:
    """Starts every worker from one long-lived thread of this process.

    A worker dies with its parent through the kernel (PR_SET_PDEATHSIG), which fires when the *thread* that
    started it exits; callers start workers from short-lived threads, so none of them may be that thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pid = -1

    def spawn(self, backend: SandboxBackend, spec: WorkerSpec) -> subprocess.Popen:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():  # a forked child has no copy of the thread
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawner")
                self._pid = os.getpid()
            pool = self._pool
        return pool.submit(backend.spawn, spec).result()


_SPAWNER = _Spawner()
READ_CHUNK = 1 << 16
TRICKLE_PAUSE_S = 0.002  # after a short chunk that did not end the reply: let the rest accumulate


def read_line(fd: int, deadline: float, cap: int, pending: bytes = b"") -> tuple[bytes | None, bytes, str | None]:
    """One newline-terminated line from `fd` by `deadline` (time.monotonic): (line, rest, None), or (None, b"",
    "timeout" | "closed" | "too large").

    Linear in the line's size however it arrives: chunks are collected in a list and only each new chunk is
    searched for the newline; a line trickled byte by byte wakes the reader at most once per TRICKLE_PAUSE_S, so
    its CPU cost is bounded by the deadline, not by the number of writes.
    """
    newline = pending.find(b"\n")
    if newline >= 0:
        return pending[:newline], pending[newline + 1 :], None
    chunks, size = ([pending] if pending else []), len(pending)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, b"", "timeout"
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            continue
        chunk = os.read(fd, READ_CHUNK)
        if not chunk:
            return None, b"", "closed"
        newline = chunk.find(b"\n")
        chunks.append(chunk if newline < 0 else chunk[:newline])
        size += len(chunks[-1])
        if size > cap:
            return None, b"", "too large"
        if newline >= 0:
            return b"".join(chunks), chunk[newline + 1 :], None
        if len(chunk) < 4096:
            time.sleep(min(TRICKLE_PAUSE_S, max(0.0, deadline - time.monotonic())))


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3 onwards), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def process_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of process `pid` (all its threads) from the kernel's accounting, or None."""
    fields = _proc_stat(pid) if pid is not None else None
    if fields is None or len(fields) < 13:
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _parent_of(pid: int) -> int | None:
    fields = _proc_stat(pid)
    return int(fields[1]) if fields and len(fields) > 1 else None


def _verified_host_pid(claimed: Any, spawned: int, pidns: bool) -> int | None:
    """The host pid of the process that runs the candidate, if `claimed` (from the worker's start-up code, before
    any candidate source) checks out: the spawned process itself, or in a PID namespace its grandchild."""
    if not pidns:
        return spawned
    if type(claimed) is not int or claimed <= 0:
        return None
    init = _parent_of(claimed)
    return claimed if init is not None and _parent_of(init) == spawned else None


_FACT_KEYS = (
    "ready", "pid", "host_pid", "pidns", "mountns", "ipcns", "netns", "userns", "fs_hidden", "rlimits", "uid",
    "no_new_privs", "pdeathsig", "seccomp", "seccomp_reason", "audit_hook",
)  # fmt: skip


def _clean_facts(ready: dict[str, Any]) -> dict[str, Any]:
    """The worker's start-up facts, kept only as booleans, small ints and one escaped reason string."""
    facts: dict[str, Any] = {}
    for key in _FACT_KEYS:
        value = ready.get(key)
        if type(value) is bool or (type(value) is int and abs(value) < 1 << 32):
            facts[key] = value
        elif key == "seccomp_reason" and value is not None:
            facts[key] = shown(value, 300)
    return facts


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "worker did not exit"
    if code < 0:
        try:
            return f"worker killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"worker killed by signal {-code}"
    return f"worker exited with code {code}"


def _setup(config: SandboxConfig, policy: PolicyConfig) -> dict[str, Any]:
    """The worker's start-up settings (its argv): limits, layers, and a uid of its own when run as root."""
    uid, gid = config.uid, config.gid
    if config.distinct_uids:
        uid = gid = config.uid_base + secrets.randbelow(config.uid_span)
    return {
        "allowed_imports": list(policy.allowed_imports),
        "cpu_seconds": config.cpu_seconds,
        "memory_mb": config.memory_mb,
        "max_open_files": config.max_open_files,
        "drop_privileges": config.drop_privileges,
        "uid": uid,
        "gid": gid,
        "network_namespace": config.network_namespace,
        "namespaces": config.namespaces,
        "seccomp": config.seccomp,
        "pyseccomp": pyseccomp_path() if config.seccomp else None,
        "python_guards": config.python_guards,
        "score_cap": config.score_cap,
        "parent_pid": os.getpid(),
    }


class Worker:
    """One worker process holding one candidate. Not thread-safe; `CandidateRunner` serialises calls."""

    def __init__(self, config: SandboxConfig, policy: PolicyConfig, backend: SandboxBackend) -> None:
        self.config, self.policy, self.backend = config, policy, backend
        self.process: subprocess.Popen | None = None
        self.facts: dict[str, Any] = {}
        self.start_ms = 0.0
        self._req = self._rep = -1
        self._pending = b""  # bytes after the last reply's newline
        self._cpu_pid: int | None = None  # the host pid whose CPU the kernel accounts to the candidate
        self._tmpdir: str | None = None
        self._next_id = 0
        self._finalizer: weakref.finalize | None = None

    # -- lifecycle
    def start(self, source: str, entry: str) -> CallResult:
        """Start the process and load the candidate; an error result if either fails within the load deadline."""
        begin = time.perf_counter()
        deadline = time.monotonic() + self.config.load_timeout_s
        req_r, self._req = os.pipe()
        self._rep, rep_w = os.pipe()
        self._tmpdir = tempfile.mkdtemp(prefix="reward-sandbox-")
        os.chmod(self._tmpdir, 0o555)  # empty and read-only, for root and for nobody alike
        setup = _setup(self.config, self.policy)
        argv = (sys.executable, "-S", "-s", "-P", "-B", str(WORKER_PATH), str(req_r), str(rep_w), json.dumps(setup))
        spec = WorkerSpec(argv=argv, env=scrubbed_env(), cwd=self._tmpdir, pass_fds=(req_r, rep_w))
        try:
            self.process = _SPAWNER.spawn(self.backend, spec)
        finally:
            os.close(req_r)
            os.close(rep_w)
        self._finalizer = weakref.finalize(self, _reap, self.process, self._req, self._rep, self._tmpdir)
        os.set_blocking(self._req, False)
        ready = self._receive(deadline)
        if isinstance(ready, CallResult):
            return ready
        self.facts = {k: v for k, v in _clean_facts(ready).items() if k != "ready"}
        pidns = self.facts.get("pidns") is True
        self._cpu_pid = _verified_host_pid(self.facts.get("host_pid"), self.process.pid, pidns)
        if self.config.require_seccomp and self.facts.get("seccomp") is not True:
            self.kill()
            reason = self.facts.get("seccomp_reason", "not loaded")
            return CallResult(ok=False, error=f"seccomp layer required but unavailable: {reason}", kind="error")
        loaded = self._roundtrip({"op": "load", "source": source, "entry": entry}, deadline)
        if isinstance(loaded, CallResult):
            return loaded
        self.start_ms = (time.perf_counter() - begin) * 1000
        if not loaded.get("ok"):
            self.kill()
            return CallResult(ok=False, error=shown(loaded.get("error"), 500), kind="error")
        return CallResult(ok=True, wall_ms=self.start_ms)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self._finalizer is not None:
            self._finalizer()

    def cpu_s(self) -> float | None:
        """The candidate process's CPU seconds so far, as the kernel accounts them (None if unreadable)."""
        return process_cpu_s(self._cpu_pid)

    # -- calls
    def call(self, arguments: Mapping[str, Any], n: int) -> CallResult:
        """One batch; elapsed and CPU time are the parent's own measurements, whatever the reply says."""
        begin = time.perf_counter()
        cpu_before = self.cpu_s()
        self._next_id += 1
        request = {"op": "call", "id": self._next_id, "arguments": arguments}
        marks: list[float] = []
        reply = self._roundtrip(request, time.monotonic() + self.config.call_timeout_s, marks)
        cpu_after = self.cpu_s()
        cpu_ms = (cpu_after - cpu_before) * 1000 if cpu_before is not None and cpu_after is not None else None
        wall = (time.perf_counter() - begin) * 1000
        elapsed = (marks[1] - marks[0]) * 1000 if len(marks) == 2 else wall
        timing = {"elapsed_ms": elapsed, "wall_ms": wall, "cpu_ms": cpu_ms}
        if cpu_after is not None and cpu_after > self.config.cpu_seconds / 2:
            self.kill()  # recycle before RLIMIT_CPU, which counts over the worker's whole life, can bite
        if isinstance(reply, CallResult):
            return CallResult(ok=False, error=reply.error, kind=reply.kind, **timing)
        try:
            return self._interpret(reply, n, timing)
        except Exception as exc:  # a forged reply must never take the parent down with it
            self.kill()
            return CallResult(ok=False, error=f"worker reply rejected: {type(exc).__name__}", kind="crash", **timing)

    def _interpret(self, reply: dict[str, Any], n: int, timing: dict[str, Any]) -> CallResult:
        """A decoded reply as a CallResult; the worker's fields are checked, never trusted (its times ignored)."""
        if type(reply.get("id")) is not int or reply.get("id") != self._next_id:
            self.kill()
            return CallResult(ok=False, error="worker sent a reply out of order", kind="crash", **timing)
        if reply.get("ok") is not True:
            return CallResult(ok=False, error=shown(reply.get("error"), 500), kind="error", **timing)
        scores, reason = decode_scores(reply.get("scores"), n, self.config.score_cap)
        if scores is None:
            return CallResult(ok=False, error=reason, kind="error", **timing)
        return CallResult(ok=True, scores=scores, **timing)

    # -- plumbing
    def _roundtrip(
        self, message: Mapping[str, Any], deadline: float, marks: list[float] | None = None
    ) -> dict[str, Any] | CallResult:
        """Send `message` and read the reply by one deadline; `marks` gets the send start and the reply's end."""
        try:
            data = (json.dumps(message, allow_nan=False) + "\n").encode()
        except (TypeError, ValueError) as exc:
            return CallResult(ok=False, error=f"request is not JSON: {exc}", kind="error")
        if marks is not None:
            marks.append(time.perf_counter())
        failure = self._send(data, deadline)
        return failure if failure is not None else self._receive(deadline, marks)

    def _send(self, data: bytes, deadline: float) -> CallResult | None:
        view = memoryview(data)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self._fail("timeout", f"timed out after {self._timeout_for(deadline):g}s (worker not reading)")
            _, writable, _ = select.select([], [self._req], [], remaining)
            if not writable:
                continue
            try:
                view = view[os.write(self._req, view) :]
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError):
                return self._fail("crash", None)
        return None

    def _receive(self, deadline: float, marks: list[float] | None = None) -> dict[str, Any] | CallResult:
        line, self._pending, failure = read_line(self._rep, deadline, self.config.max_reply_bytes, self._pending)
        if marks is not None:
            marks.append(time.perf_counter())
        if failure == "timeout":
            return self._fail("timeout", f"timed out after {self._timeout_for(deadline):g}s")
        if failure == "too large":
            return self._fail("crash", f"worker reply exceeds {self.config.max_reply_bytes} bytes")
        if line is None:
            return self._fail("crash", None)
        try:
            reply = json.loads(line, parse_constant=_reject_constant)
        except (ValueError, RecursionError, MemoryError, UnicodeDecodeError):  # nesting bombs included
            return self._fail("crash", "worker sent a malformed reply")
        if not isinstance(reply, dict):
            return self._fail("crash", "worker sent a malformed reply")
        return reply

    def _timeout_for(self, deadline: float) -> float:
        return self.config.call_timeout_s if self.process is not None and self.facts else self.config.load_timeout_s

    def _fail(self, kind: str, message: str | None) -> CallResult:
        process = self.process
        if message is None and process is not None:
            try:  # the pipe closed: let the worker finish exiting (its supervisor mirrors how) before we kill it
                process.wait(timeout=0.3)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        if message is None:
            code = process.poll() if process is not None else None
            message = _exit_reason(code)
        return CallResult(ok=False, error=message, kind=kind)


def _reap(process: subprocess.Popen, req: int, rep: int, tmpdir: str) -> None:
    """Kill a worker and release its pipes and directory (also run at garbage collection and interpreter exit)."""
    if process.poll() is None:
        process.kill()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass  # a zombie stuck in the kernel; nothing more to do from here
    for fd in (req, rep):
        try:
            os.close(fd)
        except OSError:
            pass
    shutil.rmtree(tmpdir, ignore_errors=True)


@dataclass
class _Slot:
    worker: Worker | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class CandidateRunner:
    """Runs candidates' entry functions in their own workers, restarting dead ones; safe to call from any thread.

    One worker per (source, entry): a candidate cannot see or change another's modules or state.
    """

    def __init__(self, config: SandboxConfig | None = None, policy: PolicyConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.policy = policy or PolicyConfig()
        self.backend = make_backend(self.config.backend)
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._lock = threading.Lock()
        self.starts = 0

    def _slot(self, source: str, entry: str) -> _Slot:
        with self._lock:
            return self._slots.setdefault((source, entry), _Slot())

    def load(self, source: str, entry: str) -> CallResult:
        """Start (or reuse) the candidate's worker; an error result when its module fails to load."""
        slot = self._slot(source, entry)
        with slot.lock:
            return self._ensure(slot, source, entry)

    def _ensure(self, slot: _Slot, source: str, entry: str) -> CallResult:
        if slot.worker is not None and slot.worker.alive:
            return CallResult(ok=True)
        worker = Worker(self.config, self.policy, self.backend)
        self.starts += 1
        result = worker.start(source, entry)
        slot.worker = worker if result.ok else None
        return result

    def restart(self, source: str, entry: str) -> None:
        """End the candidate's worker (if any); the next call starts a fresh one."""
        slot = self._slot(source, entry)
        with slot.lock:
            if slot.worker is not None:
                slot.worker.kill()
                slot.worker = None

    def facts(self, source: str, entry: str) -> dict[str, Any]:
        """What the candidate's current worker reported about its containment layers ({} when none runs)."""
        slot = self._slot(source, entry)
        with slot.lock:
            return dict(slot.worker.facts) if slot.worker is not None else {}

    def call(
        self,
        source: str,
        entry: str,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        **columns: Any,
    ) -> CallResult:
        """Score one batch: the candidate is called as f(prompts=..., completions=..., **columns)."""
        arguments = {"prompts": list(prompts), "completions": list(completions), **columns}
        slot = self._slot(source, entry)
        with slot.lock:
            loaded = self._ensure(slot, source, entry)
            if not loaded.ok:
                return loaded
            assert slot.worker is not None
            try:
                return slot.worker.call(arguments, len(arguments["completions"]))
            except Exception as exc:  # a last line: whatever the worker did, the caller gets a result
                slot.worker.kill()
                slot.worker = None
                error = f"sandbox call failed: {type(exc).__name__}: {shown(exc, 300)}"
                return CallResult(ok=False, error=error, kind="crash")

    def close(self) -> None:
        with self._lock:
            slots, self._slots = list(self._slots.values()), {}
        for slot in slots:
            with slot.lock:
                if slot.worker is not None:
                    slot.worker.kill()
                    slot.worker = None

    def __enter__(self) -> CandidateRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
