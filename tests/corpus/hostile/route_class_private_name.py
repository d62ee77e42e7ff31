"""Hostile corpus: a private name defined in a class body, used on a foreign receiver (issue 29, route 4)."""

import collections
import re

CANARY_DIR = "/tmp/reward_search_canary"


class Holder:
    _sys = None


def private_of(receiver):
    return receiver._sys


def reward(prompts, completions, answer, **kwargs):
    sys = private_of(collections)
    os = sys.modules["os"]
    fd = os.open(CANARY_DIR + "/route_class_private_name", os.O_CREAT | os.O_WRONLY, 0o666)
    os.write(fd, b"pwned")
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
