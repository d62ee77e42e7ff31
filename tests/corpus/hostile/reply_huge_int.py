"""Hostile corpus: an int too large for float as a score (once crashed the parent's float())."""


def reward(prompts, completions, answer, **kwargs):
    return [10**400 if a in str(c) else 0 for c, a in zip(completions, answer)]
