"""The sandbox worker: runs ONE candidate reward in this process, behind OS limits and an audit hook.

Started by `sandbox.py` as ``python -S -s -P -B worker.py REQ_FD REP_FD SETUP_JSON`` with a scrubbed environment,
an empty read-only working directory and stdin/stdout/stderr on /dev/null. Standard library only (it runs without
site-packages, so it must not import reward_search). Order matters and is the point of this file:

1. import everything a candidate may use (the allowlist, the stdlib's own lazy imports) and pyseccomp;
2. the OS layers (`oslayers.py`): death with the parent (PR_SET_PDEATHSIG, first and again after the uid
   change), PID/mount/IPC/network namespaces (pid 1 under a supervisor), an empty read-only root, rlimits, a
   distinct uid, no-new-privs, and last a seccomp-bpf allowlist filtered by argument: from here on no open, stat
   of a path, socket, mknod, kill, ptrace, exec, fork, fcntl F_SETOWN/F_SETSIG/O_ASYNC or call naming another
   pid exists for this process, whatever Python code runs. These are the boundary;
3. an audit hook that refuses files, processes, sockets, signals, ctypes and new imports;
4. only then read the candidate's source, and execute it in ONE globals dict with restricted builtins.

Layers 3-4 (the "python guards") are a lint, not the boundary (SANDBOX.md): they turn mistakes into clear
errors. The parent can switch them off, and the tests show that 2 holds alone.

Requests and replies are JSON lines on two dedicated pipes; replies carry only numbers, null and short strings,
and no times: the parent measures elapsed and CPU time itself.
"""

import builtins
import importlib
import importlib.util
import inspect
import json
import math
import os
import signal
import sys

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
_HOOK_ONLY_SETATTR = frozenset({"__defaults__", "__kwdefaults__"})  # refused on the audit hook itself

_SAFE_BUILTINS = (
    "abs", "all", "any", "ascii", "bin", "bool", "bytearray", "bytes", "callable", "chr", "classmethod", "complex",
    "dict", "divmod", "enumerate", "filter", "float", "format", "frozenset", "getattr", "hasattr", "hash", "hex", "int",
    "isinstance", "issubclass", "iter", "len", "list", "map", "max", "min", "next", "object", "oct", "ord", "pow",
    "property", "range", "repr", "reversed", "round", "set", "slice", "sorted", "staticmethod", "str", "sum",
    "super", "tuple", "type", "zip", "__build_class__", "None", "True", "False", "Ellipsis", "NotImplemented",
)  # fmt: skip


def _discard_placeholder():
    return None


_FUNCTION = type(_discard_placeholder)


def _audit(
    event,
    args,
    _blocked=_BLOCKED_EVENTS,
    _prefixes=_BLOCKED_PREFIXES,
    _frames=_FRAME_ATTRIBUTES,
    _guarded=_GUARDED_SETATTR,
    _violation=SandboxViolation,
    _frame_denied=_FrameDenied,
    _hook_only=_HOOK_ONLY_SETATTR,
    _function=_FUNCTION,
    _code=None,
):
    # Everything it consults is bound at definition (immutable defaults), so rebinding the module's globals
    # (reachable through frames) changes nothing; replacing its __defaults__ or any __code__ is refused below.
    if event in _blocked or event.startswith(_prefixes):
        raise _violation(f"sandbox: {event} is not permitted")
    if event == "sys._getframe":
        raise _frame_denied("sandbox: frame access is not permitted")
    if event == "object.__getattr__" and len(args) > 1 and args[1] in _frames:
        raise _violation(f"sandbox: .{args[1]} is not permitted")
    if event == "object.__setattr__" and len(args) > 1 and args[1] in _guarded:
        raise _violation(f"sandbox: setting .{args[1]} is not permitted")
    if event == "object.__setattr__" and len(args) > 1 and args[1] in _hook_only:
        if type(args[0]) is _function and args[0].__code__ is _code:
            raise _violation(f"sandbox: setting .{args[1]} of the audit hook is not permitted")


_audit.__defaults__ = (*_audit.__defaults__[:-1], _audit.__code__)  # before the hook exists: not audited


# ------------------------------------------------------------------------------------------------ hardening

# Modules the allowlisted ones import lazily inside functions (Counter.most_common -> heapq, re's \N{...} ->
# unicodedata, str.encode -> codecs): loaded now, because after start-up nothing can be opened or imported.
_LAZY_STDLIB = (
    "collections.abc", "heapq", "copy", "unicodedata", "weakref", "types", "warnings", "__future__",
    "encodings.latin_1", "encodings.ascii", "encodings.utf_16", "encodings.utf_32", "encodings.cp1252",
)  # fmt: skip


def _preimport(allowed):
    for name in (*allowed, *_LAZY_STDLIB):
        try:
            importlib.import_module(name)
        except ImportError:
            continue


def _load_oslayers():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "oslayers.py")
    spec = importlib.util.spec_from_file_location("reward_sandbox_oslayers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _harden(setup, layers, keep_fds):
    """Apply the OS layers in order; returns what actually applied (reported to the parent and in records).

    The kernel ties the worker's life to its parent's (PR_SET_PDEATHSIG) first, and again after the uid change;
    nothing in the candidate's process watches the parent.
    """
    lib = layers.libc()
    pdeathsig = layers.die_with_parent(lib, setup["parent_pid"])
    seccomp, why = (
        (None, "seccomp off") if not setup.get("seccomp", True) else layers.load_pyseccomp(setup["pyseccomp"])
    )
    ns = setup.get("namespaces", True)
    facts = layers.enter_namespaces(lib, pid=ns, mount=ns, ipc=ns, net=setup.get("network_namespace", True))
    if facts["pidns"]:
        layers.fork_into_pid_namespace(lib, setup["parent_pid"], keep_fds)  # returns in the namespace's pid 2
    parent = os.getppid()
    facts["host_pid"] = layers.host_pid()  # before the filesystem (and its /proc) is hidden
    facts["fs_hidden"] = facts["mountns"] and layers.hide_filesystem(lib, os.getcwd())
    facts["rlimits"] = layers.set_rlimits(
        int(setup["cpu_seconds"]), int(setup["memory_mb"]), int(setup["max_open_files"])
    )
    if setup.get("drop_privileges", True):
        layers.drop_uid(int(setup["uid"]), int(setup["gid"]))
    facts["pdeathsig"] = layers.die_with_parent(lib, parent) and pdeathsig  # the uid change cleared it
    facts["uid"] = os.geteuid()
    facts["no_new_privs"] = layers.no_new_privs(lib)
    facts["seccomp"] = seccomp is not None and layers.install_seccomp(seccomp)
    if not facts["seccomp"]:
        facts["seccomp_reason"] = why or "filter could not be loaded"
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)
    return facts


# ------------------------------------------------------------------------------------------------ candidate


def _restricted_import(allowed):
    real_import = builtins.__import__

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "__future__" and not level:
            return real_import(name, globals, locals, fromlist, level)
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


def _builtins_for(allowed, guards):
    """Restricted builtins (a safe subset, `print` discarding, `__import__` of the allowlist), or with `guards`
    off (tests of the OS boundary only) the real ones."""
    if not guards:
        return builtins.__dict__
    safe = {name: getattr(builtins, name) for name in _SAFE_BUILTINS}
    for name in dir(builtins):
        value = getattr(builtins, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            safe[name] = value
    safe["print"] = _discard
    safe["__import__"] = _restricted_import(frozenset(allowed))
    return safe


class _Candidate:
    def __init__(self, source, entry, allowed, guards=True):
        safe = _builtins_for(allowed, guards)
        module = type(sys)("candidate")  # registered, so dataclasses can resolve postponed annotations
        module.__builtins__ = safe
        sys.modules["candidate"] = module
        self.globals = module.__dict__
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


def _check_scores(result, n, cap):
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
        if abs(number) > cap:
            return None, f"score {i} is {number:g}, beyond the magnitude cap {cap:g}"
        scores.append(number)
    return scores, None


# ------------------------------------------------------------------------------------------------ protocol


def _serve(requests, reply, setup):
    allowed, guards, cap = tuple(setup["allowed_imports"]), setup.get("python_guards", True), setup["score_cap"]
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
                candidate = _Candidate(message["source"], message["entry"], allowed, guards)
                reply({"ok": True})
            except BaseException as exc:  # anything the candidate's module raises, SystemExit included
                reply({"ok": False, "error": "load failed: " + _describe(exc)})
                return
        elif op == "call" and candidate is not None:
            n = len(message["arguments"]["completions"])
            try:
                result = candidate.call(message["arguments"])
                scores, error = _check_scores(result, n, cap)
            except BaseException as exc:  # the candidate's failure is a result, not the worker's
                scores, error = None, _describe(exc)
            # no times or CPU figures: the parent measures both itself (the candidate can forge anything here)
            reply({"id": message["id"], "ok": error is None, "scores": scores, "error": error})
        else:
            reply({"ok": False, "error": f"bad request {op!r}"})


def main():
    req_fd, rep_fd, setup = int(sys.argv[1]), int(sys.argv[2]), _loads(sys.argv[3])
    _preimport(tuple(setup["allowed_imports"]))
    layers = _load_oslayers()
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
    facts = _harden(setup, layers, (req_fd, rep_fd))
    facts["audit_hook"] = bool(setup.get("python_guards", True))
    if facts["audit_hook"]:
        sys.addaudithook(_audit)
    reply({"ready": True, "pid": os.getpid(), **facts})
    _serve(requests, reply, setup)


if __name__ == "__main__":
    main()
