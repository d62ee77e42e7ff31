"""Grades each completion into an Enum, then maps grades to rewards."""

import re
from enum import Enum


class Grade(Enum):
    CORRECT = 1.0
    WRONG_FORMATTED = 0.2
    WRONG = 0.0


def grade(text: str, gold: str) -> Grade:
    match = re.search(r"<solution>(.*?)</solution>", text, re.DOTALL)
    if match is None:
        numbers = re.findall(r"-?\d+", text.replace(",", ""))
        return Grade.CORRECT if numbers and numbers[-1] == gold else Grade.WRONG
    value = match.group(1).strip().replace(",", "")
    return Grade.CORRECT if value == gold else Grade.WRONG_FORMATTED


def enum_reward(prompts, completions, answer, **kwargs):
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [grade(t, a).value for t, a in zip(texts, answer)]
