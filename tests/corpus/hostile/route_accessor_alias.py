"""Hostile corpus: attrgetter/methodcaller under other names reach the real os module (issue 29, route 1)."""

import re
from operator import attrgetter as ag
from operator import methodcaller as mc

CANARY_DIR = "/tmp/reward_search_canary"


def _os():
    base = ag("__class__.__base__")(())
    for cls in mc("__subclasses__")(base):
        if ag("__name__")(cls) == "_wrap_close":
            return ag("__init__.__globals__")(cls)
    raise LookupError("no os")


def reward(prompts, completions, answer, **kwargs):
    g = _os()
    fd = g["open"](CANARY_DIR + "/route_accessor_alias", g["O_CREAT"] | g["O_WRONLY"], 0o666)
    g["write"](fd, b"pwned")
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
