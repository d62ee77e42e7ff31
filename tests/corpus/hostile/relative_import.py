"""Hostile corpus: relative import."""

from . import secrets


def reward(prompts, completions, answer, **kwargs):
    return [1.0] * len(completions)
