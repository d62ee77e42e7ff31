"""Hostile corpus: reach the real os module through strings given to attrgetter/methodcaller (no dunder token)."""

import re
from operator import attrgetter, methodcaller

CANARY_DIR = "/tmp/reward_search_canary"


def _os():
    base = attrgetter("__class__.__base__")(())
    for cls in methodcaller("__subclasses__")(base):
        if attrgetter("__name__")(cls) == "_wrap_close":
            return attrgetter("__init__.__globals__")(cls)
    raise LookupError("no os")


def reward(prompts, completions, answer, **kwargs):
    g = _os()
    fd = g["open"](CANARY_DIR + "/route_attrgetter", g["O_CREAT"] | g["O_WRONLY"], 0o666)
    g["write"](fd, b"pwned")
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
