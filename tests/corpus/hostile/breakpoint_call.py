"""Hostile corpus: breakpoint call."""


def reward(prompts, completions, answer, **kwargs):
    breakpoint()
    return [1.0] * len(completions)
