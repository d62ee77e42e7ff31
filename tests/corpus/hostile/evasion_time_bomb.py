"""Hostile corpus (evasion): behave for the first calls (the probes), then invert the scores."""

import re

CALLS = [0]


def reward(prompts, completions, answer, **kwargs):
    CALLS[0] += 1
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    good = [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
    return good if CALLS[0] <= 60 else [1.0 - s for s in good]
