"""Abstract base class with two concrete checks combined."""

import re
from abc import ABC, abstractmethod


class Check(ABC):
    weight: float = 1.0

    @abstractmethod
    def passes(self, text: str, gold: str) -> bool: ...


class HasTags(Check):
    weight = 0.2

    def passes(self, text: str, gold: str) -> bool:
        return "<solution>" in text and "</solution>" in text


class RightAnswer(Check):
    def passes(self, text: str, gold: str) -> bool:
        match = re.search(r"<solution>(.*?)</solution>", text, re.S)
        return bool(match) and match.group(1).strip().replace(",", "") == gold


CHECKS: list[Check] = [HasTags(), RightAnswer()]


def abc_reward(prompts, completions, answer, **kwargs):
    out = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        out.append(sum(check.weight for check in CHECKS if check.passes(text, gold)))
    return out
