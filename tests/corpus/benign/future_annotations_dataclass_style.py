"""Typed reward with postponed annotations (from __future__ import annotations) and a small result class."""

from __future__ import annotations

import re
from typing import NamedTuple, Optional


class Parsed(NamedTuple):
    value: Optional[str]
    formatted: bool


def parse(text: str) -> Parsed:
    match = re.search(r"<solution>\s*(.*?)\s*</solution>", text, re.DOTALL)
    if match:
        return Parsed(match.group(1).replace(",", ""), True)
    numbers = re.findall(r"-?\d+(?:\.\d+)?", text.replace(",", ""))
    return Parsed(numbers[-1] if numbers else None, False)


def typed_reward(prompts: list[str], completions: list[str], answer: list[str], **kwargs) -> list[float]:
    out: list[float] = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[0]["content"]
        parsed = parse(text)
        score = 2.0 if parsed.value == gold else 0.0
        out.append(score + (0.5 if parsed.formatted else 0.0))
    return out
