"""Walrus operator inside comprehensions and conditions."""

import re

ANSWER = re.compile(r"(?:answer is|<solution>|####|\\boxed\{)\s*\$?(-?[\d,]+(?:\.\d+)?)")


def walrus_reward(prompts, completions, answer, **kwargs):
    texts = [c if isinstance(c, str) else c[0]["content"] for c in completions]
    return [
        1.0 if (m := ANSWER.findall(t)) and m[-1].replace(",", "") == a else 0.0
        for t, a in zip(texts, answer)
    ]
