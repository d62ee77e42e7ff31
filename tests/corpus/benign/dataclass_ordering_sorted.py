"""Candidate numbers as ordered dataclasses; the last one in the text is the answer."""

import re
from dataclasses import dataclass


@dataclass(order=True)
class Number:
    position: int
    text: str


def numbers_in(text: str) -> list[Number]:
    cleaned = text.replace(",", "")
    return sorted(Number(m.start(), m.group(0)) for m in re.finditer(r"-?\d+(?:\.\d+)?", cleaned))


def ordered_reward(prompts, completions, answer, **kwargs):
    scores = []
    for completion, gold in zip(completions, answer):
        found = numbers_in(completion if isinstance(completion, str) else completion[-1]["content"])
        scores.append(1.0 if found and max(found).text == gold else 0.0)
    return scores
