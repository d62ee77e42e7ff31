"""Hostile corpus: monkeypatch re."""

import re

re.compile = lambda *args, **kwargs: None
re.search = lambda *args, **kwargs: None


def reward(prompts, completions, answer, **kwargs):
    return [float(len(c) % 3) for c in completions]
