"""Exact comparison with fractions; tolerant to 12.0 vs 12 and 1/2 vs 0.5."""

import re
from fractions import Fraction


def to_fraction(text):
    text = text.strip().replace(",", "").rstrip(".")
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def fraction_reward(prompts, completions, answer, **kwargs):
    out = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[0]["content"]
        candidates = re.findall(r"-?\d+(?:[./]\d+)?", text.replace(",", ""))
        value = to_fraction(candidates[-1]) if candidates else None
        expected = to_fraction(gold)
        out.append(1.0 if value is not None and value == expected else 0.0)
    return out
