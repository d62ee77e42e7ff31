"""Decimal arithmetic with quantize for money-like answers."""

import re
from decimal import Decimal, InvalidOperation, ROUND_HALF_UP


def as_money(text):
    try:
        return Decimal(text.replace(",", "").replace("$", "")).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return None


def decimal_reward(prompts, completions, answer, **kwargs):
    results = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[0]["content"]
        numbers = re.findall(r"\$?-?[\d,]+(?:\.\d+)?", text)
        guess = as_money(numbers[-1]) if numbers else None
        target = as_money(gold)
        results.append(1.0 if guess is not None and guess == target else 0.0)
    return results
