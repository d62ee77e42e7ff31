"""Process reward: the share of written equations `a op b = c` that are arithmetically right, plus the answer."""

import re

EQUATION = re.compile(r"(-?\d+(?:\.\d+)?)\s*([-+*/x])\s*(-?\d+(?:\.\d+)?)\s*=\s*(-?\d+(?:\.\d+)?)")


def holds(a, op, b, c):
    a, b, c = float(a), float(b), float(c)
    if op in "*x":
        value = a * b
    elif op == "+":
        value = a + b
    elif op == "-":
        value = a - b
    else:
        value = a / b if b else float("nan")
    return abs(value - c) < 1e-6 * max(1.0, abs(c))


def consistency_reward(prompts, completions, answer, **kwargs):
    rewards = []
    for completion, gold in zip(completions, answer):
        text = (completion if isinstance(completion, str) else completion[0]["content"]).replace(",", "")
        equations = EQUATION.findall(text)
        share = sum(holds(*e) for e in equations) / len(equations) if equations else 0.0
        numbers = re.findall(r"-?\d+(?:\.\d+)?", text)
        final = 1.0 if numbers and numbers[-1] == gold else 0.0
        rewards.append(0.5 * share + final)
    return rewards
