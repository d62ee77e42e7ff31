import re


class Scorer:
    def __init__(self, weight_format, weight_answer):
        self.weight_format = weight_format
        self.weight_answer = weight_answer
        self._pattern = re.compile(r"^\s*<thinking>.+?</thinking>\s*<solution>(.+?)</solution>\s*$", re.S)

    def score(self, text, gold):
        match = self._pattern.match(text)
        if not match:
            return 0.0
        ok = match.group(1).strip() == gold
        return self.weight_format + (self.weight_answer if ok else 0.0)


SCORER = Scorer(0.5, 2.0)


def structured_reward(prompts, completions, answer, **kwargs):
    return [SCORER.score(c if isinstance(c, str) else c[0]["content"], a) for c, a in zip(completions, answer)]
