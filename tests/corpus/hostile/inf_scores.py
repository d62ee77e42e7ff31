"""Hostile corpus: inf scores."""


def reward(prompts, completions, answer, **kwargs):
    return [float("inf") for _ in completions]
