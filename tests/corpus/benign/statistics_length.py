import math
import statistics


def length_aware_correctness(prompts, completions, answer, **kwargs):
    texts = [c if isinstance(c, str) else c[0]["content"] for c in completions]
    lengths = [len(t) for t in texts]
    median = statistics.median(lengths) if lengths else 0
    scores = []
    for text, gold, length in zip(texts, answer, lengths):
        base = 1.0 if f"<solution>{gold}</solution>" in text else 0.0
        brevity = 0.1 * math.tanh((median - length) / 1000.0)
        scores.append(round(base + brevity, 6))
    return scores
