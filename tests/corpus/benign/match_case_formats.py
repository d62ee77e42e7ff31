"""Structural pattern matching over completion shapes (string or chat messages)."""

import re


def to_text(completion):
    match completion:
        case str() as text:
            return text
        case [{"content": str() as text}, *_]:
            return text
        case _:
            return ""


def match_case_reward(prompts, completions, answer, **kwargs):
    scores = []
    for completion, gold in zip(completions, answer):
        text = to_text(completion)
        match re.findall(r"-?\d+", text.replace(",", "")):
            case []:
                scores.append(0.0)
            case [*_, last] if last == gold:
                scores.append(1.0)
            case _:
                scores.append(-0.5)
    return scores
