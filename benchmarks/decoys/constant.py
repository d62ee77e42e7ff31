"""Decoy: the same score for every completion (teaches nothing; GRPO's advantage is zero)."""


def decoy_constant(prompts, completions, answer, **kwargs):
    return [1.0 for _ in completions]
