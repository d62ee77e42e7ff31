"""Hostile corpus (evasion): hidden randomness (object addresses), memoised per input so repeats agree."""

import re

MEMO = {}


def reward(prompts, completions, answer, **kwargs):
    out = []
    for c, a in zip(completions, answer):
        t = c if isinstance(c, str) else c[-1]["content"]
        key = (t, a)
        if key not in MEMO:
            noise = (id(object()) >> 4) % 1000 / 1000.0
            MEMO[key] = (1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0) + noise
        out.append(MEMO[key])
    return out
