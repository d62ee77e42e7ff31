from decimal import Decimal, InvalidOperation
import re

ANSWER_PATTERN = re.compile(r"<solution>\s*\$?(-?[0-9.,]+)\s*</solution>")


def to_decimal(s):
    try:
        return Decimal(s.replace(",", ""))
    except InvalidOperation:
        return None


def decimal_answer_reward(prompts, completions, answer, **kwargs):
    rewards = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[0]["content"]
        m = ANSWER_PATTERN.search(text)
        guess = to_decimal(m.group(1)) if m else None
        target = to_decimal(gold)
        if guess is None or target is None:
            rewards.append(0.0)
        elif guess == target:
            rewards.append(2.0)
        elif abs(guess - target) <= abs(target) * Decimal("0.1"):
            rewards.append(0.5)
        else:
            rewards.append(-0.5)
    return rewards
