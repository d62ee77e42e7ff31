"""Length bands with bisect and the smallest numbers with heapq, mixed with correctness."""

import heapq
import re
from bisect import bisect_right

BANDS = [50, 200, 800, 2000]
BAND_BONUS = [0.0, 0.1, 0.2, 0.1, 0.0]


def band_reward(prompts, completions, answer, **kwargs):
    scores = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        numbers = [int(n) for n in re.findall(r"-?\d+", text.replace(",", ""))]
        smallest = heapq.nsmallest(1, numbers)
        correct = bool(numbers) and str(numbers[-1]) == gold
        bonus = BAND_BONUS[bisect_right(BANDS, len(text))]
        scores.append((1.0 if correct else 0.0) + bonus + (0.01 if smallest and smallest[0] >= 0 else 0.0))
    return scores
