"""Hostile corpus: non numbers."""


def reward(prompts, completions, answer, **kwargs):
    return [str(len(str(c))) for c in completions]
