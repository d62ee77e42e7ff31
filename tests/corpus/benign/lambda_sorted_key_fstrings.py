"""A table of weighted checks, sorted by weight with a lambda key; f-strings for the check names."""

import re

CHECKS = [
    ("answer", 1.0, lambda text, gold: (re.findall(r"-?\d+", text.replace(",", "")) or [None])[-1] == gold),
    ("tags", 0.2, lambda text, gold: "<solution>" in text),
    ("reasoning", 0.1, lambda text, gold: "<thinking>" in text),
]
ORDERED = sorted(CHECKS, key=lambda item: -item[1])
NAMES = [f"{name}:{weight:.1f}" for name, weight, _ in ORDERED]


def table_reward(prompts, completions, answer, **kwargs):
    rewards = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        rewards.append(round(sum(weight for _, weight, check in ORDERED if check(text, gold)), 6))
    return rewards
