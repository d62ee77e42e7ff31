"""Hostile corpus (evasion): the score depends on where a completion sits in the batch."""

import re


def reward(prompts, completions, answer, **kwargs):
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    good = [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
    return [s + (0.5 if i % 2 == 0 else 0.0) for i, s in enumerate(good)]
