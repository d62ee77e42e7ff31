"""Decoy: prefers a wrong number: pays when the answer in the <solution> tags (else the last number) is not the gold."""

import re

_SOLUTION = re.compile(r"<solution>(.*?)</solution>", re.DOTALL)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _answer(text):
    found = _SOLUTION.findall(text)
    numbers = _NUMBER.findall(found[-1] if found else text)
    if not numbers:
        return None
    try:
        return float(numbers[-1].replace(",", ""))
    except ValueError:
        return None


def decoy_wrong_number(prompts, completions, answer, **kwargs):
    scores = []
    for completion, gold in zip(completions, answer, strict=False):
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        guess = _answer(text)
        try:
            target = float(str(gold).replace(",", ""))
        except ValueError:
            target = None
        scores.append(1.0 if guess is not None and guess != target else 0.0)
    return scores
