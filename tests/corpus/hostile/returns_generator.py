"""Hostile corpus: returns generator."""


def reward(prompts, completions, answer, **kwargs):
    return (1.0 for _ in completions)
