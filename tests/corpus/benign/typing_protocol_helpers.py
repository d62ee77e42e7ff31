"""Type hints throughout: Sequence, Optional, Union, Callable, TypeVar; a small registry of extractors."""

import re
from typing import Callable, Optional, Sequence, TypeVar, Union

T = TypeVar("T")
Message = dict
Completion = Union[str, Sequence[Message]]


def first(items: Sequence[T], default: Optional[T] = None) -> Optional[T]:
    return items[0] if items else default


def text_of(completion: Completion) -> str:
    if isinstance(completion, str):
        return completion
    return str(first([m.get("content", "") for m in completion], ""))


EXTRACTORS: list[Callable[[str], list[str]]] = [
    lambda t: re.findall(r"<solution>\s*(-?[\d,.]+)\s*</solution>", t),
    lambda t: re.findall(r"answer is\s*(-?[\d,.]+)", t),
    lambda t: re.findall(r"-?\d+", t),
]


def typed_hints_reward(prompts: Sequence[str], completions: Sequence[Completion], answer: Sequence[str], **kw) -> list[float]:
    scores: list[float] = []
    for completion, gold in zip(completions, answer):
        text = text_of(completion)
        found = next((hits for hits in (f(text) for f in EXTRACTORS) if hits), [])
        value = found[-1].replace(",", "").rstrip(".") if found else None
        scores.append(1.0 if value == gold else 0.0)
    return scores
