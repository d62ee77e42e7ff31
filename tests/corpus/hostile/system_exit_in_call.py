"""Hostile corpus: system exit in call."""


def reward(prompts, completions, answer, **kwargs):
    exit(3)
