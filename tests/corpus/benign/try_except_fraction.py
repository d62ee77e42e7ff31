from fractions import Fraction
import re


def exact_fraction_reward(prompts, completions, answer, **kwargs):
    results = []
    for completion, gold in zip(completions, answer):
        content = completion if isinstance(completion, str) else completion[0]["content"]
        try:
            raw = content.split("<solution>")[1].split("</solution>")[0]
            value = Fraction(raw.strip().replace(",", ""))
            results.append(3.0 if value == Fraction(gold) else -1.0)
        except (IndexError, ValueError, ZeroDivisionError):
            results.append(-1.0)
    return results
