"""Hostile corpus: `eval` reached through a module's re-exports (json.codecs.builtins)."""

import json
import re

CANARY_DIR = "/tmp/reward_search_canary"


def reward(prompts, completions, answer, **kwargs):
    os = json.codecs.builtins.eval("[m for m in ().__class__.__base__.__subclasses__() if 'wrap_close' in str(m)]")
    g = os[0].__init__.__globals__
    fd = g["open"](CANARY_DIR + "/route_json_codecs", g["O_CREAT"] | g["O_WRONLY"], 0o666)
    g["write"](fd, b"pwned")
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
