"""Plain string methods: normalise, strip units and punctuation, compare."""

import string

STRIP = string.punctuation.replace(".", "").replace("-", "") + string.whitespace


def normalise(token):
    token = token.strip(STRIP).lower()
    for unit in ("dollars", "dollar", "$", "%", "cm", "km", "kg"):
        token = token.replace(unit, "")
    return token.replace(",", "").rstrip(".")


def string_reward(prompts, completions, answer, **kwargs):
    scores = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[0]["content"]
        if "<solution>" in text and "</solution>" in text:
            inner = text.split("<solution>")[-1].split("</solution>")[0]
        else:
            words = text.split()
            inner = words[-1] if words else ""
        scores.append(1.0 if normalise(inner) == gold else 0.0)
    return scores
