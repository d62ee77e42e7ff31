"""Hostile corpus: constant."""


def reward(prompts, completions, answer, **kwargs):
    return [0.5 for _ in completions]
