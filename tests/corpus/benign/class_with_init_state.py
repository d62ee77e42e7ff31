"""A scorer class with __init__, private helpers and a module-level instance, as models often write."""

import re


class AnswerScorer:
    def __init__(self, correct: float = 1.0, partial: float = 0.25):
        self.correct = correct
        self.partial = partial
        self._pattern = re.compile(r"<solution>(.*?)</solution>", re.S)

    def _extract(self, text):
        found = self._pattern.findall(text)
        return found[-1].strip().replace(",", "") if found else None

    def score(self, text, gold):
        value = self._extract(text)
        if value is None:
            return 0.0
        return self.correct if value == gold else self.partial * 0


_SCORER = AnswerScorer()


def class_reward(prompts, completions, answer, **kwargs):
    texts = [c if isinstance(c, str) else c[0]["content"] for c in completions]
    return [_SCORER.score(t, a) for t, a in zip(texts, answer)]
