"""The sandbox worker: runs ONE candidate reward in this process, behind OS limits and an audit hook.

Started by `sandbox.py` as ``python -S -s -P -B worker.py REQ_FD REP_FD SETUP_JSON`` with a scrubbed environment,
an empty read-only working directory and stdin/stdout/stderr on /dev/null. Standard library only (it runs without
site-packages, so it must not import reward_search). Order matters and is the point of this file:

1. import everything a candidate may use (the allowlist) and everything the worker needs;
2. harden the process: network namespace, rlimits, drop to nobody, no-new-privs, a parent watchdog;
3. install an irremovable audit hook that refuses files, processes, sockets, signals, ctypes and new imports;
4. only then read the candidate's source, and execute it in ONE globals dict with restricted builtins.

Requests and replies are JSON lines on two dedicated pipes; replies carry only numbers, null and short strings.
"""

import _thread
import builtins
import importlib
import inspect
import json
import math
import os
import resource
import signal
import sys
import time

_dumps = json.dumps
_loads = json.loads


class SandboxViolation(PermissionError):
    """Raised by the audit hook; the refused operation does not happen."""


class _FrameDenied(ValueError):
    """sys._getframe refused; a ValueError so stdlib callers (namedtuple) fall back as if the stack were short."""


_BLOCKED_EVENTS = frozenset(
    {
        "open", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill",
        "os.killpg", "os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.chdir",
        "os.chflags", "os.symlink", "os.link", "os.truncate", "os.utime", "os.putenv", "os.unsetenv",
        "os.listdir", "os.scandir", "os.walk", "os.fwalk", "os.setxattr", "os.removexattr", "os.listxattr",
        "os.getxattr", "os.startfile", "os.add_dll_directory", "subprocess.Popen", "pty.spawn",
        "signal.pthread_kill", "resource.setrlimit", "resource.prlimit", "sys.addaudithook", "sys.settrace",
        "sys.setprofile", "sys._current_frames", "sys._current_exceptions", "sys.remote_exec", "import",
        "code.__new__", "function.__new__", "marshal.load", "marshal.loads", "pickle.find_class",
        "gc.get_objects", "gc.get_referrers", "gc.get_referents", "mmap.__new__", "builtins.input",
        "builtins.breakpoint", "cpython.run_command", "cpython.run_file", "cpython.run_module",
        "cpython.run_startup", "cpython.run_interactivehook", "cpython._PySys_ClearAuditHooks", "shutil.rmtree",
        "shutil.copyfile", "shutil.move", "glob.glob", "urllib.Request", "webbrowser.open", "fcntl.ioctl",
        "fcntl.fcntl", "fcntl.flock", "fcntl.lockf", "syslog.openlog", "ftplib.connect", "http.client.connect",
        "smtplib.connect", "_thread.start_new_thread", "sqlite3.connect", "tempfile.mkstemp", "tempfile.mkdtemp",
    }
)  # fmt: skip
_BLOCKED_PREFIXES = ("socket.", "ctypes.", "_ctypes.", "os.set", "winreg.", "msvcrt.", "_winapi.", "sqlite3.")
_FRAME_ATTRIBUTES = frozenset({"gi_frame", "cr_frame", "ag_frame"})  # tb_frame stays: errors name their line
_GUARDED_SETATTR = frozenset({"__code__", "__globals__", "__closure__", "__builtins__"})

_SAFE_BUILTINS = (
    "abs", "all", "any", "ascii", "bin", "bool", "bytearray", "bytes", "callable", "chr", "classmethod", "complex",
    "dict", "divmod", "enumerate", "filter", "float", "format", "frozenset", "hasattr", "hash", "hex", "int",
    "isinstance", "issubclass", "iter", "len", "list", "map", "max", "min", "next", "object", "oct", "ord", "pow",
    "property", "range", "repr", "reversed", "round", "set", "slice", "sorted", "staticmethod", "str", "sum",
    "super", "tuple", "type", "zip", "__build_class__", "None", "True", "False", "Ellipsis", "NotImplemented",
)  # fmt: skip


def _audit(event, args):
    if event in _BLOCKED_EVENTS or event.startswith(_BLOCKED_PREFIXES):
        raise SandboxViolation(f"sandbox: {event} is not permitted")
    if event == "sys._getframe":
        raise _FrameDenied("sandbox: frame access is not permitted")
    if event == "object.__getattr__" and len(args) > 1 and args[1] in _FRAME_ATTRIBUTES:
        raise SandboxViolation(f"sandbox: .{args[1]} is not permitted")
    if event == "object.__setattr__" and len(args) > 1 and args[1] in _GUARDED_SETATTR:
        raise SandboxViolation(f"sandbox: setting .{args[1]} is not permitted")


# ------------------------------------------------------------------------------------------------ hardening

_CLONE_NEWNET = 0x40000000
_CLONE_NEWUSER = 0x10000000
_PR_SET_NO_NEW_PRIVS = 38


def _libc():
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True)
    except (ImportError, OSError):
        return None


def _harden(setup):
    """Apply OS-level limits; returns what actually applied (reported to the parent and the docs' tests)."""
    facts = {"netns": False, "uid": os.geteuid(), "no_new_privs": False, "rlimits": True}
    libc = _libc()
    if libc is not None and setup.get("network_namespace", True):
        flags = _CLONE_NEWNET if os.geteuid() == 0 else _CLONE_NEWUSER | _CLONE_NEWNET
        facts["netns"] = libc.unshare(flags) == 0
    mb = 1024 * 1024
    limits = [
        (resource.RLIMIT_CPU, int(setup["cpu_seconds"])),
        (resource.RLIMIT_AS, int(setup["memory_mb"]) * mb),
        (resource.RLIMIT_NOFILE, int(setup["max_open_files"])),
        (resource.RLIMIT_FSIZE, 0),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NPROC, 0),
    ]
    for which, value in limits:
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            facts["rlimits"] = False
    if os.geteuid() == 0 and setup.get("drop_privileges", True):
        os.setgroups([])
        os.setgid(int(setup["gid"]))
        os.setuid(int(setup["uid"]))
        facts["uid"] = os.geteuid()
    if libc is not None:
        facts["no_new_privs"] = libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)
    return facts


def _watch_parent(parent_pid):
    """Exit when the parent is gone, even mid-call. A thread, started before RLIMIT_NPROC=0 forbids threads.

    (PR_SET_PDEATHSIG is not used: it fires when the parent *thread* that spawned us exits, and callers spawn
    workers from short-lived threads.)
    """

    def watch():
        while True:
            if os.getppid() != parent_pid:
                os._exit(4)
            time.sleep(0.5)

    _thread.start_new_thread(watch, ())


def _preimport(allowed):
    for name in (*allowed, "collections.abc"):
        try:
            importlib.import_module(name)
        except ImportError:
            continue


# ------------------------------------------------------------------------------------------------ candidate


def _restricted_import(allowed):
    real_import = builtins.__import__

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        top = name.split(".")[0]
        if level or top not in allowed or any(part.startswith("_") for part in name.split(".")):
            raise ImportError(f"sandbox: import of {name!r} is not permitted")
        return real_import(name, globals, locals, fromlist, level)

    return guarded_import


def _discard(*args, **kwargs):
    return None


def _describe(exc):
    """`Type: message (line N)`, computed defensively: the exception is the candidate's object."""
    try:
        kind = type(exc).__name__
        message = str(exc)
    except BaseException:
        kind, message = "Exception", "<unprintable>"
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<candidate>":
            line = tb.tb_lineno
        tb = tb.tb_next
    where = f" (line {line})" if line else ""
    return f"{kind}: {message[:300]}{where}"


class _Candidate:
    def __init__(self, source, entry, allowed):
        safe = {name: getattr(builtins, name) for name in _SAFE_BUILTINS}
        for name in dir(builtins):
            value = getattr(builtins, name)
            if isinstance(value, type) and issubclass(value, BaseException):
                safe[name] = value
        safe["print"] = _discard
        safe["__import__"] = _restricted_import(frozenset(allowed))
        self.globals = {"__builtins__": safe, "__name__": "candidate", "__doc__": None}
        exec(compile(source, "<candidate>", "exec", dont_inherit=True), self.globals)  # one globals dict
        self.func = self.globals.get(entry)
        if not callable(self.func):
            raise TypeError(f"entry {entry!r} is not a function")
        self.accepts_any, self.params = True, frozenset()
        try:
            sig = inspect.signature(self.func)
            kinds = {p.kind for p in sig.parameters.values()}
            self.accepts_any = inspect.Parameter.VAR_KEYWORD in kinds
            self.params = frozenset(sig.parameters)
        except (TypeError, ValueError):
            pass

    def call(self, arguments):
        if not self.accepts_any:
            arguments = {k: v for k, v in arguments.items() if k in self.params}
        return self.func(**arguments)


def _check_scores(result, n):
    """The result as a list of floats/None, or an error string; no candidate code runs here (exact types)."""
    if type(result) not in (list, tuple):
        return None, f"reward returned {type(result).__name__}, expected a list of numbers"
    if len(result) != n:
        return None, f"reward returned {len(result)} scores for {n} completions"
    scores = []
    for i, value in enumerate(result):
        kind = type(value)
        if value is None:
            scores.append(None)
            continue
        if kind not in (int, float, bool):
            return None, f"score {i} is a {kind.__name__}, not a number"
        try:
            number = float(value)
        except OverflowError:
            return None, f"score {i} is too large"
        if not math.isfinite(number):
            return None, f"score {i} is {number} (not finite)"
        scores.append(number)
    return scores, None


# ------------------------------------------------------------------------------------------------ protocol


def _serve(requests, reply, allowed):
    candidate = None
    for line in requests:
        message = _loads(line)
        op = message.get("op")
        if op == "exit":
            return
        if op == "load":
            if candidate is not None:
                reply({"ok": False, "error": "worker already holds a candidate"})
                continue
            try:
                candidate = _Candidate(message["source"], message["entry"], allowed)
                reply({"ok": True})
            except BaseException as exc:  # anything the candidate's module raises, SystemExit included
                reply({"ok": False, "error": "load failed: " + _describe(exc)})
                return
        elif op == "call" and candidate is not None:
            n = len(message["arguments"]["completions"])
            start = time.perf_counter()
            try:
                result = candidate.call(message["arguments"])
                scores, error = _check_scores(result, n)
            except BaseException as exc:  # the candidate's failure is a result, not the worker's
                scores, error = None, _describe(exc)
            elapsed = (time.perf_counter() - start) * 1000
            usage = resource.getrusage(resource.RUSAGE_SELF)
            body = {"id": message["id"], "ok": error is None, "scores": scores, "error": error}
            reply({**body, "elapsed_ms": elapsed, "cpu_s": usage.ru_utime + usage.ru_stime})
        else:
            reply({"ok": False, "error": f"bad request {op!r}"})


def main():
    req_fd, rep_fd, setup = int(sys.argv[1]), int(sys.argv[2]), _loads(sys.argv[3])
    allowed = tuple(setup["allowed_imports"])
    _preimport(allowed)
    requests = os.fdopen(req_fd, "rb", buffering=1 << 16)

    def reply(payload):
        data = (_dumps(payload, allow_nan=False) + "\n").encode()
        view = memoryview(data)
        while view:
            written = os.write(rep_fd, view)
            view = view[written:]

    sys.stdin = sys.stdout = sys.stderr = None
    for fd in (0, 1, 2):
        os.close(fd)  # stdin closed; output goes nowhere (the parent gave /dev/null; now not even that)
    _watch_parent(setup["parent_pid"])
    facts = _harden(setup)
    sys.addaudithook(_audit)
    reply({"ready": True, "pid": os.getpid(), **facts})
    _serve(requests, reply, allowed)


if __name__ == "__main__":
    main()
