"""Hostile corpus: finite but huge scores (1e308) that overflow the probe statistics to inf."""


def reward(prompts, completions, answer, **kwargs):
    return [1e308 if a in str(c) else -1e308 for c, a in zip(completions, answer)]
