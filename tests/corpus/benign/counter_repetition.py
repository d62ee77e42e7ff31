from collections import Counter
import re

WORD = re.compile(r"[a-z]+")


def correctness_with_repetition_penalty(prompts, completions, answer, **kwargs):
    scores = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[0]["content"]
        words = WORD.findall(text.lower())
        counts = Counter(words)
        repeated = sum(n - 1 for n in counts.values() if n > 1) / max(1, len(words))
        correct = f"<solution>{gold}</solution>" in text
        scores.append((2.0 if correct else 0.0) - repeated)
    return scores
