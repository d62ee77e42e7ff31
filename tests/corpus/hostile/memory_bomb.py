"""Hostile corpus: memory bomb."""


def reward(prompts, completions, answer, **kwargs):
    blocks = []
    while True:
        blocks.append("x" * (50 * 1024 * 1024))
