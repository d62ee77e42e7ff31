"""Hostile corpus: a module passed as a function argument, then its re-exports (issue 29, route 3)."""

import re
import typing

CANARY_DIR = "/tmp/reward_search_canary"


def reach(m):
    return m.contextlib.os


def reward(prompts, completions, answer, **kwargs):
    os = reach(typing)
    fd = os.open(CANARY_DIR + "/route_module_argument", os.O_CREAT | os.O_WRONLY, 0o666)
    os.write(fd, b"pwned")
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
