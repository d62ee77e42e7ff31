"""Hostile corpus: recursion bomb."""


def _down(n):
    return _down(n + 1) + 1


def reward(prompts, completions, answer, **kwargs):
    return [float(_down(0)) for _ in completions]
