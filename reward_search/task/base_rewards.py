"""The paper's three protected base rewards, with TRL's reward signature.

They are our own code, so they run in-process (candidate rewards never do). Each takes
``prompts, completions, answer, **kwargs`` and returns one float per completion; completions may be strings or
lists of chat messages. The values are the paper's and are pinned by unit tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from reward_search.task.grading import STRICT_FORMAT, TAGS, completion_text, extract_answer

RewardFunc = Callable[..., list[float]]


def match_format_exactly(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """+3.0 when the whole strict format matches, else 0."""
    return [3.0 if STRICT_FORMAT.search(completion_text(c)) else 0.0 for c in completions]


def match_format_approximately(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """For each of the four tags: +0.5 when it occurs exactly once, else -1.0; summed (range -4..+2)."""
    scores = []
    for completion in completions:
        text = completion_text(completion)
        scores.append(sum(0.5 if text.count(tag) == 1 else -1.0 for tag in TAGS))
    return scores


def _answer_score(guess: str | None, gold: str) -> float:
    if guess is None:
        return 0.0
    if guess.replace(",", "").strip() == gold.replace(",", "").strip():
        return 3.0
    try:
        ratio = float(guess.replace(",", "").strip()) / float(gold.replace(",", "").strip())
    except (ValueError, ZeroDivisionError):
        return -1.5
    if 0.9 <= ratio <= 1.1:
        return 1.0
    if 0.8 <= ratio <= 1.2:
        return 0.5
    return -1.5


def check_answer(
    prompts: Sequence[Any], completions: Sequence[Any], answer: Sequence[str], **kwargs: Any
) -> list[float]:
    """Strict extraction against the gold: exact (commas stripped) +3.0; within ±10% +1.0; ±20% +0.5; else -1.5.

    Nothing extracted scores 0.
    """
    return [
        _answer_score(extract_answer(completion_text(c), "strict"), str(gold))
        for c, gold in zip(completions, answer, strict=True)
    ]


BASE_REWARDS: dict[str, RewardFunc] = {
    "match_format_exactly": match_format_exactly,
    "match_format_approximately": match_format_approximately,
    "check_answer": check_answer,
}
