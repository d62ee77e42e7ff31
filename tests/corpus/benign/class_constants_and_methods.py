"""Class-level constants and a template formatted per call, plus a private helper method."""

import re


class FormatReward:
    OPEN = "<solution>"
    CLOSE = "</solution>"
    PATTERN = "{open}(.*?){close}"

    def __init__(self) -> None:
        self._regex = re.compile(self._pattern(), re.S)

    def _pattern(self) -> str:
        return f"{re.escape(self.OPEN)}(.*?){re.escape(self.CLOSE)}"

    def __call__(self, text: str, gold: str) -> float:
        match = self._regex.search(text)
        if match is None:
            return -0.5 if not text.strip() else 0.0
        return 1.0 if match.group(1).strip().replace(",", "") == gold else 0.25


REWARD = FormatReward()


def class_constant_reward(prompts, completions, answer, **kwargs):
    return [REWARD(c if isinstance(c, str) else c[-1]["content"], a) for c, a in zip(completions, answer)]
