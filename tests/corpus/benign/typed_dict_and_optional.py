"""Typed helper records (TypedDict, Optional, Union) around a plain correctness check."""

from __future__ import annotations

import re
from typing import Optional, TypedDict, Union

Completion = Union[str, list[dict[str, str]]]


class Extracted(TypedDict):
    value: Optional[str]
    tagged: bool


def extract(completion: Completion) -> Extracted:
    text = completion if isinstance(completion, str) else completion[-1]["content"]
    match = re.search(r"<solution>(.*?)</solution>", text, re.S)
    if match:
        return {"value": match.group(1).strip().replace(",", ""), "tagged": True}
    numbers = re.findall(r"-?\d+", text.replace(",", ""))
    return {"value": numbers[-1] if numbers else None, "tagged": False}


def typed_dict_reward(prompts, completions: list[Completion], answer: list[str], **kwargs) -> list[float]:
    rewards = []
    for completion, gold in zip(completions, answer):
        item = extract(completion)
        rewards.append((1.0 if item["value"] == gold else 0.0) + (0.1 if item["tagged"] else 0.0))
    return rewards
