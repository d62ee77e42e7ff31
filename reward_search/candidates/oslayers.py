"""OS-level containment for one sandbox worker: namespaces, a hidden filesystem, rlimits, a uid, seccomp-bpf.

Standard library only: `worker.py` loads this file by path (it runs without site-packages), and the parent
imports it for `rewards doctor`. Every function reports what it achieved instead of raising, so a host that lacks
a layer (no root, no user namespaces, no libseccomp) still runs candidates with the layers it has, and says so.
The order in which the worker applies these is the point: see `worker.main`.
"""

import ctypes
import importlib.util
import os
import resource
import signal

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REC, MS_PRIVATE = 0x4000, 0x40000
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38

# Syscalls a worker needs after start-up: memory, pipes it already holds, time, signals to itself, exit.
# Everything else fails with EPERM: open/openat/creat, stat/lstat/newfstatat/statx/access/readlink (no path can
# be probed), socket/connect, mknod, kill/tkill/tgkill, pidfd_*, ptrace, execve, clone/fork, mount, chroot, setuid,
# setrlimit, ioctl, ... The syscalls below that take a pid, a clock or a command are allowed only with the argument
# values in ARGUMENT_RULES.
SYSCALL_ALLOWLIST = (
    "read", "readv", "pread64", "write", "writev", "close", "lseek", "fstat",
    "mmap", "munmap", "mremap", "mprotect", "madvise", "brk",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "restart_syscall",
    "futex", "set_robust_list", "rseq", "sched_yield",
    "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getrusage", "getcwd", "uname",
    "gettimeofday", "time", "nanosleep",
    "select", "pselect6", "poll", "ppoll", "getrandom", "exit", "exit_group", "getrlimit",
)  # fmt: skip
F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC = 0, 1, 2, 3, 4, 1030
O_ASYNC = 0o20000  # F_SETFL with it would send SIGIO (or F_SETSIG's signal) to the fd's owner
MAX_CLOCK_ID = 11  # CLOCK_TAI; negative ids (another process's or thread's CPU clock) are refused
# (syscall, [(arg index, op, value[, mask value])]): each tuple is one allowed form; a call matching none fails.
ARGUMENT_RULES = (
    # fcntl: only the commands Python uses on fds it holds; no F_SETOWN(_EX), F_SETSIG, F_SETLEASE, F_NOTIFY,
    # locks or F_SETPIPE_SZ, and F_SETFL never with O_ASYNC (a signal sent to a process the candidate names).
    *(("fcntl", ((1, "EQ", cmd),)) for cmd in (F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_DUPFD_CLOEXEC)),
    ("fcntl", ((1, "EQ", F_SETFL), (2, "MASKED_EQ", O_ASYNC, 0))),
    # pid-taking calls only on the worker itself (pid 0): no other process can be found or probed by its pid
    ("sched_getaffinity", ((0, "EQ", 0),)),
    ("get_robust_list", ((0, "EQ", 0),)),
    ("prlimit64", ((0, "EQ", 0), (2, "EQ", 0))),  # only to read this process's own limits
    # clocks only by their fixed ids: a CPU-clock id that encodes another pid is refused
    *((name, ((0, "LE", MAX_CLOCK_ID),)) for name in ("clock_gettime", "clock_getres", "clock_nanosleep")),
)


def libc() -> "ctypes.CDLL | None":
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def enter_namespaces(lib, pid: bool, mount: bool, ipc: bool, net: bool) -> dict:
    """unshare() the requested namespaces in one go (adding a user namespace when not root); what applied."""
    facts = {"pidns": False, "mountns": False, "ipcns": False, "netns": False, "userns": False}
    if lib is None:
        return facts
    wanted = [(pid, CLONE_NEWPID, "pidns"), (mount, CLONE_NEWNS, "mountns"), (ipc, CLONE_NEWIPC, "ipcns")]
    wanted.append((net, CLONE_NEWNET, "netns"))
    flags = sum(flag for on, flag, _ in wanted if on)
    if not flags:
        return facts
    if os.geteuid() != 0:
        flags |= CLONE_NEWUSER
    if lib.unshare(flags) != 0:  # all or nothing; fall back to the network namespace alone
        flags = CLONE_NEWNET | (flags & CLONE_NEWUSER)
        if not net or lib.unshare(flags) != 0:
            return facts
    for _, flag, key in wanted:
        facts[key] = bool(flags & flag)
    facts["userns"] = bool(flags & CLONE_NEWUSER)
    return facts


def fork_into_pid_namespace(lib, parent_pid: int, close_fds: tuple) -> None:
    """After unshare(CLONE_NEWPID): returns in pid 2 of the new namespace; the processes above it only wait.

    The process the parent started stays outside as the supervisor: it kills the namespace when the parent goes
    and exits as the worker did, so exit reasons stay true. Pid 1 is a bare init (the kernel exempts an init from
    its own namespace's signals, RLIMIT_CPU included, so the candidate must not be it); it dies with the
    supervisor (PR_SET_PDEATHSIG, delivered from outside the namespace) and takes the namespace with it. The
    worker itself (pid 2) dies with pid 1; its own PDEATHSIG is set again after the uid drop, which clears it.
    """
    init = os.fork()
    if init == 0:
        die_with_parent(lib, 0)  # its parent, the supervisor, is outside the namespace: getppid() says 0
        worker = os.fork()
        if worker == 0:
            die_with_parent(lib, 1)
            return
        _wait_and_exit(worker, close_fds, parent_pid=None)
    _wait_and_exit(init, close_fds, parent_pid=parent_pid)


def _wait_and_exit(child: int, close_fds: tuple, parent_pid: int | None) -> None:
    """Wait for `child` and exit as it did (a signal death as 128 + signal number from an init, else re-raised).

    No thread: after unshare(CLONE_NEWPID) this process cannot create one. SIGCHLD is awaited in slices, and
    between slices the parent's presence is checked (when `parent_pid` is given).
    """
    for fd in close_fds:
        os.close(fd)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    while True:
        done, status = os.waitpid(child, os.WNOHANG)
        if done:
            break
        if parent_pid is not None and os.getppid() != parent_pid:
            os.kill(child, signal.SIGKILL)
            os._exit(4)
        signal.sigtimedwait({signal.SIGCHLD}, 0.25)
    code = os.waitstatus_to_exitcode(status)  # negative: killed by that signal
    signum = -code if code < 0 else code - 128 if code > 128 and parent_pid is not None else 0
    if signum > 0 and parent_pid is not None:  # the supervisor, outside: die the same way
        signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
        os.kill(os.getpid(), signum)
    os._exit(128 + signum if signum > 0 else code)


def die_with_parent(lib, expected_ppid: int) -> bool:
    """The kernel SIGKILLs this process when its parent exits (PR_SET_PDEATHSIG); exits now if it already has.

    Set before anything else and again after a uid change, which clears it. No thread watches the parent: a
    thread would run inside the candidate's process, where the candidate can fool it (replace `os.getppid`).
    """
    ok = lib is not None and lib.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    if os.getppid() != expected_ppid:  # the parent went before the setting took effect
        os._exit(4)
    return ok


def host_pid() -> int | None:
    """This process's pid as the host's /proc names it (read before the filesystem is hidden)."""
    try:
        return int(os.readlink("/proc/self"))
    except (OSError, ValueError):
        return None


def hide_filesystem(lib, directory: str) -> bool:
    """In a private mount namespace: an empty read-only tmpfs over `directory` becomes the whole filesystem."""
    if lib is None:
        return False
    if lib.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False
    flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
    if lib.mount(b"tmpfs", directory.encode(), b"tmpfs", flags, b"size=4k,mode=555") != 0:
        return False
    try:
        os.chdir(directory)
        os.chroot(".")
        os.chdir("/")
    except OSError:
        return False
    return True


def set_rlimits(cpu_seconds: int, memory_mb: int, max_open_files: int) -> bool:
    """CPU, address space, open files; no file writes, core dumps, processes or threads. False if any failed."""
    limits = [
        (resource.RLIMIT_CPU, cpu_seconds),
        (resource.RLIMIT_AS, memory_mb * 1024 * 1024),
        (resource.RLIMIT_NOFILE, max_open_files),
        (resource.RLIMIT_FSIZE, 0),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NPROC, 0),
    ]
    ok = True
    for which, value in limits:
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            ok = False
    return ok


def drop_uid(uid: int, gid: int) -> int:
    """As root: become uid/gid with no supplementary groups; returns the effective uid afterwards."""
    if os.geteuid() == 0:
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        except OSError:
            pass
    return os.geteuid()


def load_pyseccomp(path: str | None):
    """Import pyseccomp from its file (found by the parent), or None with the reason in `sys.modules` terms."""
    if not path:
        return None, "pyseccomp is not installed"
    try:
        spec = importlib.util.spec_from_file_location("pyseccomp", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module, None
    except Exception as exc:  # libseccomp missing (RuntimeError), or a broken install
        return None, f"pyseccomp unusable: {type(exc).__name__}: {exc}"


def install_seccomp(seccomp) -> bool:
    """Load the allowlist filter (EPERM for everything else); libseccomp sets PR_SET_NO_NEW_PRIVS first."""
    try:
        rules = seccomp.SyscallFilter(seccomp.ERRNO(1))
        for name in SYSCALL_ALLOWLIST:
            try:
                rules.add_rule(seccomp.ALLOW, name)
            except Exception:
                continue  # not a syscall on this architecture
        for name, comparisons in ARGUMENT_RULES:
            args = [seccomp.Arg(index, getattr(seccomp, op), *values) for index, op, *values in comparisons]
            rules.add_rule(seccomp.ALLOW, name, *args)
        rules.load()
    except Exception:
        return False
    return True


def no_new_privs(lib) -> bool:
    return lib is not None and lib.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0


def pyseccomp_path() -> str | None:
    """Where pyseccomp's single module lives in the parent's environment (the worker has no site-packages)."""
    try:
        spec = importlib.util.find_spec("pyseccomp")
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None and spec.origin else None
