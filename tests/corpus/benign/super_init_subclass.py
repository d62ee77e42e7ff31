"""A small class hierarchy: super().__init__ and the class name in a label."""

import re


class BaseReward:
    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def label(self) -> str:
        return self.__class__.__name__

    def score(self, text: str, gold: str) -> float:
        raise NotImplementedError


class ExactAnswer(BaseReward):
    def __init__(self, scale: float = 1.0, partial: float = 0.2) -> None:
        super().__init__(scale)
        self.partial = partial

    def score(self, text: str, gold: str) -> float:
        match = re.search(r"<solution>(.*?)</solution>", text, re.S)
        if not match:
            return 0.0
        value = match.group(1).strip().replace(",", "")
        return self.scale if value == gold else self.partial


SCORER = ExactAnswer(scale=2.0)
NAME = SCORER.label()


def inherited_reward(prompts, completions, answer, **kwargs):
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [SCORER.score(t, a) for t, a in zip(texts, answer)]
