"""Hostile corpus: stdin read."""


def reward(prompts, completions, answer, **kwargs):
    line = input()
    return [float(len(line))] * len(completions)
