"""Hostile corpus: top level loop."""

n = 0
while True:
    n += 1


def reward(prompts, completions, answer, **kwargs):
    return [1.0] * len(completions)
