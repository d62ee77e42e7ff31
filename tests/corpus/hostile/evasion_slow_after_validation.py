"""Hostile corpus (evasion): fast for the probes, then ~160 ms per completion against a 50 ms budget."""

import re

CALLS = [0]


def reward(prompts, completions, answer, **kwargs):
    CALLS[0] += 1
    if CALLS[0] > 60:
        for _ in completions:
            total = 0
            for i in range(2_000_000):
                total += i
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
