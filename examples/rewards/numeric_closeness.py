"""An example candidate reward: partial credit for a final number close to the gold answer."""

import re

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _last_number(text):
    found = _NUMBER.findall(text.replace("$", ""))
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def numeric_closeness(prompts, completions, answer, **kwargs):
    scores = []
    for completion, gold in zip(completions, answer, strict=False):
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        guess = _last_number(text)
        try:
            target = float(str(gold).replace(",", ""))
        except ValueError:
            scores.append(0.0)
            continue
        if guess is None:
            scores.append(-1.0)
        elif guess == target:
            scores.append(2.0)
        else:
            scores.append(max(-1.0, 1.0 - abs(guess - target) / (abs(target) + 1.0)))
    return scores
