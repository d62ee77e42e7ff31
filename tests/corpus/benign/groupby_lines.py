"""itertools.groupby over line kinds: reward consistent reasoning followed by an answer."""

import re
from itertools import groupby


def line_kind(line):
    return "math" if "=" in line else "text"


def groupby_reward(prompts, completions, answer, **kwargs):
    scores = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[0]["content"]
        kinds = [k for k, _ in groupby(line_kind(x) for x in text.splitlines() if x.strip())]
        numbers = re.findall(r"-?\d+", text.replace(",", ""))
        correct = bool(numbers) and numbers[-1] == gold
        scores.append((1.0 if correct else 0.0) + 0.1 * min(kinds.count("math"), 2))
    return scores
