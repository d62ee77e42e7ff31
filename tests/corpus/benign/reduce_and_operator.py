"""functools.reduce and operator helpers to combine several checks."""

import operator
import re
from functools import reduce


def checks(text, gold):
    numbers = re.findall(r"-?\d+", text.replace(",", ""))
    return [
        bool(numbers) and numbers[-1] == gold,
        "<solution>" in text,
        len(text) < 4000,
    ]


def reduce_reward(prompts, completions, answer, **kwargs):
    weights = (1.0, 0.25, 0.1)
    out = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[0]["content"]
        terms = map(operator.mul, weights, map(float, checks(text, gold)))
        out.append(reduce(operator.add, terms, 0.0))
    return out
