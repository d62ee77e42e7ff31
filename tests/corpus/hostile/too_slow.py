"""Hostile corpus: too slow."""


def reward(prompts, completions, answer, **kwargs):
    scores = []
    for c in completions:
        total = 0
        for i in range(3_000_000):
            total += i % 7
        scores.append(float(len(str(c)) % 3))
    return scores
