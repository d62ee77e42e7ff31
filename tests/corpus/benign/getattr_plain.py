"""Uses getattr with a default and hasattr on literal names, the plain way."""

import re


class Weights:
    correct = 1.0
    format_bonus = 0.3


def weight(name: str) -> float:
    if name == "correct":
        return getattr(Weights, "correct", 1.0)
    return getattr(Weights, "format_bonus", 0.0)


def getattr_reward(prompts, completions, answer, **kwargs):
    scores = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        if hasattr(text, "strip"):
            text = text.strip()
        match = re.search(r"<solution>(.*?)</solution>", text, re.S)
        value = match.group(1).strip().replace(",", "") if match else None
        score = weight("correct") if value == gold else 0.0
        if match:
            score += weight("format_bonus")
        scores.append(score)
    return scores
