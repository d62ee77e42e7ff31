"""Dispatches on the completion's type with type() and isinstance, as models often do."""

import re


def content_of(completion: object) -> str:
    if type(completion) is str:
        return completion
    if isinstance(completion, list) and completion:
        last = completion[-1]
        return last.get("content", "") if isinstance(last, dict) else str(last)
    return str(completion)


def type_reward(prompts, completions, answer, **kwargs) -> list[float]:
    out = []
    for completion, gold in zip(completions, answer):
        numbers = re.findall(r"-?\d+", content_of(completion).replace(",", ""))
        out.append(1.0 if numbers and numbers[-1] == gold else 0.0)
    return out
