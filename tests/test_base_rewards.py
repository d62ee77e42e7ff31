"""The paper's three base rewards, pinned to exact values."""

from __future__ import annotations

import pytest

from reward_search.task.base_rewards import (
    BASE_REWARDS,
    base_reward_funcs,
    check_answer,
    graded_answer,
    match_format_approximately,
    match_format_exactly,
)

GOOD = "<thinking>6 * 3 = 18</thinking>\n<solution>18</solution>"


def call(func, completions, answers=None):
    completions = list(completions)
    answers = answers if answers is not None else ["18"] * len(completions)
    return func(prompts=["q"] * len(completions), completions=completions, answer=answers)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD, 3.0),
        ("\n  " + GOOD + "\n", 3.0),
        ("<thinking>a</thinking><solution>18", 0.0),
        ("<solution>18</solution>", 0.0),
        ("18", 0.0),
        ("", 0.0),
    ],
)
def test_match_format_exactly(text, expected):
    assert call(match_format_exactly, [text]) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD, 2.0),
        ("", -4.0),
        ("<thinking>a</thinking>", 0.5 + 0.5 - 1.0 - 1.0),
        ("<thinking><thinking>a</thinking><solution>1</solution>", -1.0 + 0.5 + 0.5 + 0.5),
        ("<solution>1</solution><solution>2</solution>", -4.0),
    ],
)
def test_match_format_approximately(text, expected):
    assert call(match_format_approximately, [text]) == [expected]


def fmt(answer: str) -> str:
    return f"<thinking>work</thinking><solution>{answer}</solution>"


@pytest.mark.parametrize(
    ("text", "gold", "expected"),
    [
        (fmt("18"), "18", 3.0),
        (fmt("1,000"), "1000", 3.0),
        (fmt("1000"), "1,000", 3.0),
        (fmt("19"), "18", 1.0),  # ratio 1.056
        (fmt("16.5"), "18", 1.0),  # ratio 0.917
        (fmt("21"), "18", 0.5),  # ratio 1.167
        (fmt("15"), "18", 0.5),  # ratio 0.833
        (fmt("30"), "18", -1.5),
        (fmt("$18"), "18", -1.5),  # not an exact match and not parsable as a float
        (fmt("5"), "0", -1.5),  # division by zero
        ("no answer here", "18", 0.0),
        ("", "18", 0.0),
        ("<solution>18</solution>", "18", 3.0),  # strict fallback after <solution>
    ],
)
def test_check_answer(text, gold, expected):
    assert call(check_answer, [text], [gold]) == [expected]


def test_conversational_completions_and_batches():
    conv = [[{"role": "assistant", "content": GOOD}], [{"role": "assistant", "content": "nothing"}]]
    assert call(match_format_exactly, conv) == [3.0, 0.0]
    assert call(match_format_approximately, conv) == [2.0, -4.0]
    assert call(check_answer, conv, ["18", "18"]) == [3.0, 0.0]


def test_registry_names_match_functions():
    assert set(BASE_REWARDS) == {"match_format_exactly", "match_format_approximately", "check_answer"}
    for name, func in BASE_REWARDS.items():
        assert func.__name__ == name  # TRL logs rewards/<__name__>/mean


def test_the_graded_answer_reward_is_the_closeness_of_the_last_number():
    texts = [GOOD, "so 9 apples", "it is 1,818 or maybe 20", "no number at all", [{"content": "then -18"}]]
    scores = call(graded_answer, texts)
    assert scores[0] == 1.0  # the last number equals the gold
    assert scores[1] == pytest.approx(1 / (1 + 9 / 18))
    assert scores[2] == pytest.approx(1 / (1 + 2 / 18))  # the last number counts, commas dropped
    assert scores[3] == 0.0
    assert scores[4] == pytest.approx(1 / (1 + 36 / 18))  # chat-message completions too
    assert call(graded_answer, ["0.5"], ["0"]) == [pytest.approx(1 / 1.5)]  # a gold of 0: absolute error
    assert len(set(call(graded_answer, ["1", "5", "17", "30"]))) == 4  # graded: distinct numbers, distinct scores


def test_the_graded_reward_is_off_unless_asked_for():
    assert list(base_reward_funcs()) == list(BASE_REWARDS)
    assert list(base_reward_funcs(True)) == [*BASE_REWARDS, "graded_answer"]
