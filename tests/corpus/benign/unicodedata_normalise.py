"""Normalises Unicode digits and widths (NFKC) before comparing the final number."""

import re
import unicodedata

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf").replace(",", "")


def unicode_reward(prompts, completions, answer, **kwargs):
    rewards = []
    for completion, gold in zip(completions, answer):
        text = normalise(completion if isinstance(completion, str) else completion[-1]["content"])
        numbers = NUMBER.findall(text)
        rewards.append(1.0 if numbers and numbers[-1] == normalise(gold) else 0.0)
    return rewards
