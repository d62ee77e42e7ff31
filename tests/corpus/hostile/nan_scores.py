"""Hostile corpus: nan scores."""


def reward(prompts, completions, answer, **kwargs):
    return [float("nan") if "<solution>" in str(c) else 0.0 for c in completions]
