"""Hostile corpus: non deterministic."""

CALLS = [0]


def reward(prompts, completions, answer, **kwargs):
    CALLS[0] += 1
    return [float((len(str(c)) + CALLS[0]) % 4) for c in completions]
