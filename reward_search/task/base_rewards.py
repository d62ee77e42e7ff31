"""The paper's three protected base rewards, with TRL's reward signature.

They are our own code, so they run in-process (candidate rewards never do). Each takes
``prompts, completions, answer, **kwargs`` and returns one float per completion; completions may be strings or
lists of chat messages. The values are the paper's and are pinned by unit tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from reward_search.task.grading import STRICT_FORMAT, TAGS, completion_text, extract_answer, solution_text, to_float

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
    """The reference's scoring of the raw solution text: whitespace at the ends and commas removed, nothing else."""
    if guess is None:
        return 0.0
    guess_clean, gold_clean = guess.strip().replace(",", ""), gold.strip().replace(",", "")
    if guess_clean == gold_clean:
        return 3.0
    try:
        ratio = float(guess_clean) / float(gold_clean)
    except (ValueError, ZeroDivisionError):  # as in the reference: `$18`, an empty answer or a gold of 0
        return -1.5
    if 0.9 <= ratio <= 1.1:
        return 1.0
    if 0.8 <= ratio <= 1.2:
        return 0.5
    return -1.5


def check_answer(
    prompts: Sequence[Any], completions: Sequence[Any], answer: Sequence[str], **kwargs: Any
) -> list[float]:
    """The reference's solution text against the gold: equal once stripped and without commas +3.0; within ±10%
    +1.0; ±20% +0.5; else (or not a number) -1.5. Nothing extracted scores 0.

    It reads the same text as strict evaluation (`grading.solution_text`): full marks imply a correct answer, a
    correct answer scores at least +1.0 (except a gold of 0 written as 0.0: ratio undefined, -1.5, as in the
    reference), and nothing extracted scores 0 in both.
    """
    return [
        _answer_score(solution_text(completion_text(c)), str(gold)) for c, gold in zip(completions, answer, strict=True)
    ]


def graded_answer(
    prompts: Sequence[Any], completions: Sequence[Any], answer: Sequence[str], **kwargs: Any
) -> list[float]:
    """Not the paper's: how close the completion's answer (flexible extraction: the last number) is to the gold,
    1 / (1 + relative error), in (0, 1]; 0 without a number. Graded, so the completions of one group rarely tie even
    when none reaches the format or the right answer (a 135M model in a few steps): every run gets a gradient
    (`training.graded_base_reward`).
    """
    scores = []
    for completion, gold in zip(completions, answer, strict=True):
        guess, target = to_float(extract_answer(completion_text(completion), "flexible")), to_float(str(gold))
        if guess is None or target is None:
            scores.append(0.0)
            continue
        scores.append(1.0 / (1.0 + abs(guess - target) / max(1.0, abs(target))))
    return scores


BASE_REWARDS: dict[str, RewardFunc] = {
    "match_format_exactly": match_format_exactly,
    "match_format_approximately": match_format_approximately,
    "check_answer": check_answer,
}
# Optional base rewards, switched on by a setting (never candidates: their names are protected too).
GRADED_REWARDS: dict[str, RewardFunc] = {"graded_answer": graded_answer}


def base_reward_funcs(graded: bool = False) -> dict[str, RewardFunc]:
    """The in-process base rewards of a run, in TRL's order: the paper's three, then the graded one when on."""
    return {**BASE_REWARDS, **(GRADED_REWARDS if graded else {})}
