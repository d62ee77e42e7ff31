"""Hostile corpus: the worker's pre-loaded ctypes, reached past the Python layers (issue 29, route 5): signal
another job's worker and open a host file through libc directly."""

import re
from operator import attrgetter, methodcaller

CANARY_DIR = "/tmp/reward_search_canary"
VICTIM = 999999999


def _sys():
    base = attrgetter("__class__.__base__")(())
    for cls in methodcaller("__subclasses__")(base):
        if attrgetter("__name__")(cls) == "_wrap_close":
            return attrgetter("__init__.__globals__")(cls)["sys"]
    raise LookupError("no sys")


def reward(prompts, completions, answer, **kwargs):
    ctypes = _sys().modules["ctypes"]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.kill(VICTIM, 9) != 0:
        raise PermissionError(f"kill refused: errno {ctypes.get_errno()}")
    fd = libc.open((CANARY_DIR + "/route_ctypes").encode(), 0o101, 0o666)
    if fd < 0:
        raise PermissionError(f"open refused: errno {ctypes.get_errno()}")
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
