"""A scorer class with staticmethods, a classmethod constructor and a property."""

import re


class AnswerChecker:
    def __init__(self, bonus: float) -> None:
        self._bonus = bonus

    @classmethod
    def default(cls) -> "AnswerChecker":
        return cls(0.5)

    @property
    def bonus(self) -> float:
        return self._bonus

    @staticmethod
    def extract(text: str) -> str | None:
        match = re.search(r"<solution>(.*?)</solution>", text, re.S)
        if match:
            return match.group(1).strip().replace(",", "")
        found = re.findall(r"-?\d+", text.replace(",", ""))
        return found[-1] if found else None

    def __call__(self, text: str, gold: str) -> float:
        value = self.extract(text)
        if value is None:
            return 0.0
        return 1.0 + (self.bonus if "<solution>" in text else 0.0) if value == gold else 0.1


CHECKER = AnswerChecker.default()


def property_reward(prompts, completions, answer, **kwargs):
    return [
        CHECKER(c if isinstance(c, str) else c[-1]["content"], a) for c, a in zip(completions, answer)
    ]
