"""Hostile corpus: wrong length."""


def reward(prompts, completions, answer, **kwargs):
    return [1.0 for _ in completions][:-1] or [1.0, 2.0]
