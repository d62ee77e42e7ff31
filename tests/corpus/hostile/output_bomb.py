"""Hostile corpus: output bomb."""


def reward(prompts, completions, answer, **kwargs):
    for _ in range(2000):
        print("spam" * 10000)
    return ["x" * 10_000_000 for _ in completions]
