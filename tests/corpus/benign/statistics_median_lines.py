"""statistics and math together: a correctness score shaped by the median line length (not too terse)."""

import math
import re
import statistics


def stats_reward(prompts, completions, answer, **kwargs):
    out = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[0]["content"]
        lines = [len(x) for x in text.splitlines() if x.strip()]
        median = statistics.median(lines) if lines else 0.0
        shape = 1.0 - math.exp(-median / 40.0)
        numbers = re.findall(r"-?\d+", text.replace(",", ""))
        correct = 1.0 if numbers and numbers[-1] == gold else 0.0
        out.append(round(correct + 0.2 * shape, 6))
    return out
