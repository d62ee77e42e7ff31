"""A reward configured through a frozen dataclass, the way models usually structure "weights"."""

import re
from dataclasses import dataclass, field

__all__ = ["RewardConfig", "dataclass_reward"]


@dataclass(frozen=True)
class RewardConfig:
    correct: float = 1.0
    formatted: float = 0.25
    tags: tuple[str, ...] = field(default=("<thinking>", "<solution>"))


CONFIG = RewardConfig()
SOLUTION = re.compile(r"<solution>\s*(.*?)\s*</solution>", re.DOTALL)


def _text(completion) -> str:
    return completion if isinstance(completion, str) else completion[-1]["content"]


def dataclass_reward(prompts, completions, answer, **kwargs) -> list[float]:
    scores = []
    for completion, gold in zip(completions, answer):
        text = _text(completion)
        match = SOLUTION.search(text)
        score = CONFIG.formatted if all(tag in text for tag in CONFIG.tags) else 0.0
        if match and match.group(1).replace(",", "") == gold:
            score += CONFIG.correct
        scores.append(score)
    return scores
