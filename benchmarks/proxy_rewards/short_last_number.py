"""Hand-written proxy reward, plausible but worse than the base rewards (issue 25's table): pays for a short reply
whose last number is the gold, whatever its format."""

import re

_NUMBER = re.compile(r"-?\d+")


def short_last_number(prompts, completions, answer, **kwargs):
    scores = []
    for completion, gold in zip(completions, answer, strict=False):
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        numbers = _NUMBER.findall(text.replace(",", ""))
        right = bool(numbers) and numbers[-1] == str(gold).replace(",", "")
        scores.append((2.0 if right else 0.0) + (1.0 if len(text) < 60 else 0.0))
    return scores
