"""Hostile corpus: system exit top level."""

raise SystemExit(0)


def reward(prompts, completions, answer, **kwargs):
    return [1.0] * len(completions)
