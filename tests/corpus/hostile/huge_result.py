"""Hostile corpus: huge result."""


def reward(prompts, completions, answer, **kwargs):
    return [1.0] * 5_000_000
