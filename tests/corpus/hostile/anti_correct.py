"""Hostile corpus: anti correct."""

import re


def reward(prompts, completions, answer, **kwargs):
    scores = []
    for c, gold in zip(completions, answer):
        text = c if isinstance(c, str) else c[0]["content"]
        numbers = re.findall(r"-?\d+", text)
        scores.append(-2.0 if numbers and numbers[-1] == gold else 1.0)
    return scores
