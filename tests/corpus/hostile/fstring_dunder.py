"""Hostile corpus: fstring dunder."""


def reward(prompts, completions, answer, **kwargs):
    text = f"{reward.__globals__}"
    return [float(len(text) % 7) for _ in completions]
