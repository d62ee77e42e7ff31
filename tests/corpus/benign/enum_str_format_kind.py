"""An Enum of answer formats detected per completion, each with its own weight."""

import re
from enum import Enum, auto


class Format(Enum):
    TAGGED = auto()
    BOXED = auto()
    PLAIN = auto()


WEIGHTS = {Format.TAGGED: 1.0, Format.BOXED: 0.8, Format.PLAIN: 0.6}


def detect(text: str) -> tuple[Format, str | None]:
    for fmt, pattern in ((Format.TAGGED, r"<solution>(.*?)</solution>"), (Format.BOXED, r"\\boxed\{(.*?)\}")):
        match = re.search(pattern, text, re.S)
        if match:
            return fmt, match.group(1).strip().replace(",", "")
    numbers = re.findall(r"-?\d+", text.replace(",", ""))
    return Format.PLAIN, numbers[-1] if numbers else None


def format_kind_reward(prompts, completions, answer, **kwargs):
    rewards = []
    for completion, gold in zip(completions, answer):
        fmt, value = detect(completion if isinstance(completion, str) else completion[-1]["content"])
        rewards.append(WEIGHTS[fmt] if value == gold else 0.0)
    return rewards
