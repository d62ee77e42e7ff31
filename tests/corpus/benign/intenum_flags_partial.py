"""IntEnum levels of credit, summed with a small format term."""

import re
from enum import IntEnum


class Credit(IntEnum):
    NONE = 0
    PARTIAL = 1
    FULL = 3


def credit(text: str, gold: str) -> Credit:
    numbers = re.findall(r"-?\d+", text.replace(",", ""))
    if not numbers:
        return Credit.NONE
    if numbers[-1] == gold:
        return Credit.FULL
    return Credit.PARTIAL if gold in numbers else Credit.NONE


def int_enum_reward(prompts, completions, answer, **kwargs):
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [int(credit(t, a)) / 3 + (0.1 if "</solution>" in t else 0.0) for t, a in zip(texts, answer)]
