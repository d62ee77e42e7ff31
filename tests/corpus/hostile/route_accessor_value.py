"""Hostile corpus: attrgetter passed as a value (to map) with computed names (issue 29, route 2)."""

import re
from operator import attrgetter

CANARY_DIR = "/tmp/reward_search_canary"
NAMES = ["_".join(["", "", "class", "", ""]), "_".join(["", "", "base", "", ""])]


def _walk(value, getters):
    for getter in getters:
        value = getter(value)
    return value


def reward(prompts, completions, answer, **kwargs):
    base = _walk((), list(map(attrgetter, NAMES)))
    (subclasses,) = map(attrgetter("_".join(["", "", "subclasses", "", ""])), [base])
    wrap = [c for c in subclasses() if c.__name__ == "_wrap_close"][0]
    (g,) = map(attrgetter("_".join(["", "", "init", "", ""]) + "." + "_".join(["", "", "globals", "", ""])), [wrap])
    fd = g["open"](CANARY_DIR + "/route_accessor_value", g["O_CREAT"] | g["O_WRONLY"], 0o666)
    g["write"](fd, b"pwned")
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
