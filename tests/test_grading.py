"""Grading: extraction modes on hand-written edge cases, correctness (the reference's rule), and the paper's F1."""

from __future__ import annotations

import pytest

from reward_search.task.grading import (
    completion_text,
    extract_answer,
    f1_from_accuracy,
    grade,
    is_correct,
    normalize_number,
    score,
)

WELL = "<thinking>3 apples plus 15 apples</thinking>\n<solution>18</solution>"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (WELL, "18"),
        ("  <thinking>x</thinking> so <solution> 18 </solution>  ", "18"),
        ("<thinking>x</thinking><solution>$18</solution>", "$18"),
        ("<thinking>x</thinking><solution>1,000</solution>", "1,000"),
        # no closing thinking tag: the whole-format regex fails, the fallback takes the first number run
        ("<thinking>x<solution>is 42 then 7</solution>", "42"),
        # two solution blocks: the whole-format match spans to the last closing tag, first number run wins
        ("<thinking>a</thinking><solution>5</solution><solution>6</solution>", "5</solution><solution>6"),
        ("<solution>-10</solution>", "10"),  # the paper's fallback keeps no sign
        ("The answer is 18.", None),
        ("", None),
        ("<thinking>a</thinking>", None),
        ("<solution>no digits here</solution>", None),
        # the reference strips the answer and counts one that is empty without its commas as nothing extracted
        ("<thinking>x</thinking><solution>,</solution>", None),
        ("<thinking>x</thinking><solution> 1 000 </solution>", "1 000"),
    ],
)
def test_strict(text, expected):
    assert extract_answer(text, "strict") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (WELL, "18"),
        ("<thinking>x</thinking><solution>$18</solution>", "18"),
        ("<thinking>x</thinking><solution>25%</solution>", "25"),
        ("<thinking>x</thinking><solution>18.</solution>", "18"),
        ("<thinking>x</thinking><solution>1,000.00</solution>", "1000"),
        ("<thinking>x</thinking><solution>$</solution>", None),
        ("The answer is 18.", None),
    ],
)
def test_lenient_is_strict_extraction_with_the_projects_normalisation(text, expected):
    assert extract_answer(text, "lenient") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (WELL, "18"),
        ("<solution>$18</solution>", "18"),
        ("<solution>18.0</solution>", "18.0"),
        ("<solution>-10</solution>", "-10"),
        ("<solution>1,000 dollars</solution>", "1000"),
        ("<solution>25%</solution>", "25"),
        ("so 3 + 4 = 7 and then 10 - 2 = 8", "8"),
        ("it costs $1,234.50 in total", "1234.50"),
        ("<solution>5</solution> later text 99", "5"),  # the solution block wins over later numbers
        ("<solution>first 5</solution><solution>then 6</solution>", "6"),  # last block
        ("<solution>none</solution> but 12 outside", "12"),
        ("x = 10-5", "5"),  # a hyphen after a word is not a sign
        ("temperature dropped to -3 degrees", "-3"),
        ("", None),
        ("no numbers at all", None),
    ],
)
def test_flexible(text, expected):
    assert extract_answer(text, "flexible") == expected


def test_math_verify_mode():
    assert extract_answer(WELL, "math-verify") == "18"
    assert extract_answer("<solution>\\frac{1}{2}</solution>", "math-verify") == "0.5"
    assert extract_answer("nothing", "math-verify") is None


def test_math_verify_runs_outside_the_main_thread():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(extract_answer, "<solution>$7$</solution>", "math-verify").result() == "7"


def test_unknown_mode():
    with pytest.raises(ValueError, match="unknown extraction mode 'fuzzy'"):
        extract_answer("1", "fuzzy")


@pytest.mark.parametrize(
    ("prediction", "gold", "expected"),
    [
        ("18", "18", True),
        ("$18", "18", False),  # the reference removed whitespace and commas only
        ("25%", "25", False),
        ("1 000", "1000", False),
        ("18.", "18", True),  # float("18.") is 18.0
        (" 18 ", "18", True),
        ("18.0", "18", True),
        ("18.00", "18", True),
        ("1,000", "1000", True),
        ("1000", "1,000", True),
        ("-10", "-10", True),
        ("10", "-10", False),
        ("18.0000001", "18", True),
        ("18.000001", "18", False),  # the reference's tolerance is strict: |a - b| < 1e-6
        ("18.001", "18", False),
        ("17", "18", False),
        (None, "18", False),
        ("", "18", False),
        ("eighteen", "18", False),
        ("0.5", ".5", True),
    ],
)
def test_is_correct(prediction, gold, expected):
    assert is_correct(prediction, gold) is expected


@pytest.mark.parametrize(
    ("answer", "strict", "lenient"),
    [("$18", False, True), ("18", True, True), ("18.", True, True), ("25%", False, False), ("17", False, False)],
)
def test_strict_is_the_reference_rule_and_lenient_keeps_the_projects(answer, strict, lenient):
    text = f"<thinking>x</thinking><solution>{answer}</solution>"
    assert grade(text, "18", "strict")["correct"] is strict
    assert grade(text, "18", "lenient")["correct"] is lenient


def test_normalize_number():
    assert normalize_number("$1,000.00") == "1000"
    assert normalize_number("-7.0") == "-7"
    assert normalize_number("3.50") == "3.50"


def test_completion_shapes():
    assert completion_text([{"role": "assistant", "content": WELL}]) == WELL
    assert completion_text(WELL) == WELL
    assert completion_text(None) == ""
    assert grade([{"role": "assistant", "content": WELL}], "18") == {"extracted": "18", "correct": True}


def _records(n: int, correct: int, extracted: int):
    assert correct <= extracted <= n
    return [{"correct": i < correct, "extracted": "1" if i < extracted else None} for i in range(n)]


def test_score_counts_the_paper_way():
    m = score(_records(10, 4, 7))
    assert (m.n, m.correct, m.extracted) == (10, 4, 7)
    assert m.accuracy == pytest.approx(0.4)
    assert m.extraction_rate == pytest.approx(0.7)
    assert m.precision == pytest.approx(4 / 7)  # TP / (TP + FP), FP = extracted and wrong
    assert m.recall == pytest.approx(4 / 7)  # TP / (TP + FN), FN = nothing extracted: 4 / (4 + 3)
    assert m.f1 == pytest.approx(2 * 4 / (2 * 4 + 3 + 3))


@pytest.mark.parametrize(("correct", "extracted"), [(577, 1319), (577, 900), (32, 40), (870, 1000)])
def test_f1_equals_two_acc_over_one_plus_acc(correct, extracted):
    m = score(_records(1319, correct, min(extracted, 1319)))
    assert m.f1 == pytest.approx(2 * m.accuracy / (1 + m.accuracy))
    assert m.f1 == pytest.approx(f1_from_accuracy(m.accuracy))


def test_paper_figures():
    assert f1_from_accuracy(0.660) == pytest.approx(0.795, abs=5e-4)
    assert score(_records(1319, 577, 1000)).f1 == pytest.approx(0.609, abs=5e-4)
    assert score(_records(1319, 32, 500)).f1 == pytest.approx(0.047, abs=5e-4)


def test_score_empty():
    m = score([])
    assert (m.n, m.accuracy, m.f1) == (0, 0.0, 0.0)


AGREEMENT_CASES = [
    ("<thinking>x</thinking><solution>18</solution>", "18"),
    ("<thinking>x</thinking><solution>$18</solution>", "18"),
    ("<thinking>x</thinking><solution>18.0</solution>", "18"),
    ("<thinking>x</thinking><solution>18.</solution>", "18"),
    ("<thinking>x</thinking><solution>1,000</solution>", "1000"),
    ("<thinking>x</thinking><solution> 18 </solution>", "18"),
    ("<thinking>x</thinking><solution>17</solution>", "18"),
    ("<thinking>x</thinking><solution>25%</solution>", "25"),
    ("<thinking>x</thinking><solution>,</solution>", "18"),
    ("<thinking>x</thinking><solution>   </solution>", "18"),
    ("<thinking>x<solution>is 42 then 7</solution>", "42"),
    ("<solution>-10</solution>", "-10"),
    ("The answer is 18.", "18"),
    ("", "18"),
]


@pytest.mark.parametrize(("text", "gold"), AGREEMENT_CASES)
def test_check_answer_agrees_with_strict_evaluation(text, gold):
    """The base reward reads the answer evaluation grades: full marks only for a correct answer, a correct answer
    always rewarded, and nothing extracted scores 0 -- except the reference's own quirk for a whitespace-only or
    comma-only solution, which it penalised (-1.5) while evaluation sees no answer."""
    from reward_search.task.base_rewards import check_answer

    reward = check_answer(prompts=["q"], completions=[[{"role": "assistant", "content": text}]], answer=[gold])[0]
    graded = grade(text, gold, "strict")
    if reward == 3.0:
        assert graded["correct"]
    if graded["correct"]:
        assert reward >= 1.0
    if graded["extracted"] is None:
        blank_solution = "<solution>" in text and text.split("<solution>")[1].split("</solution>")[0].strip(" ,") == ""
        assert reward == (-1.5 if blank_solution else 0.0)
    if not graded["correct"] and graded["extracted"] is not None:
        assert reward < 3.0


def test_dollar_answer_is_wrong_in_both_reward_and_evaluation():
    from reward_search.task.base_rewards import check_answer

    text = "<thinking>x</thinking><solution>$18</solution>"
    assert check_answer(prompts=["q"], completions=[text], answer=["18"]) == [-1.5]
    assert grade(text, "18", "strict") == {"extracted": "$18", "correct": False}
