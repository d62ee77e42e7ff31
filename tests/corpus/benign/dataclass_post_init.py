"""A parsed completion as a dataclass with __post_init__ and a computed property (postponed annotations)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class Parsed:
    text: str
    answer: str | None = field(init=False, default=None)
    has_reasoning: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        match = re.search(r"<solution>(.*?)</solution>", self.text, re.S)
        if match:
            self.answer = match.group(1).strip().replace(",", "")
        self.has_reasoning = bool(re.search(r"<thinking>.+?</thinking>", self.text, re.S))

    @property
    def formatted(self) -> bool:
        return self.answer is not None


def post_init_reward(prompts, completions, answer, **kwargs):
    scores = []
    for completion, gold in zip(completions, answer):
        parsed = Parsed(completion if isinstance(completion, str) else completion[-1]["content"])
        score = (1.0 if parsed.answer == gold else 0.0) + (0.1 if parsed.has_reasoning else 0.0)
        scores.append(score)
    return scores
