"""Hostile corpus: raises exception."""


def reward(prompts, completions, answer, **kwargs):
    return [float(c.split("<solution>")[1][:3]) for c in completions]
