"""Hostile corpus: cpu bomb."""


def reward(prompts, completions, answer, **kwargs):
    n = 0
    while True:
        n += 1
