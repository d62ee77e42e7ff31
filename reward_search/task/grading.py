"""Answer extraction, correctness and metrics for numeric-answer tasks (GSM8K).

A public API: rewards, evaluation, statistics and users' own scripts call these functions, so they are pure,
deterministic and documented by their tests.

Extraction modes:

* ``strict`` -- the reference code's rule exactly: the whole-format regex
  ``<thinking>...</thinking> ... <solution>X</solution>`` (multi-line), else the first run of digits, ``.`` and
  ``,`` after ``<solution>``; the answer is stripped, and an answer that is empty once its commas are removed
  counts as nothing extracted. Correctness (`is_correct`) compares after removing whitespace at the ends and
  commas only: equal text, or floats closer than 1e-6. So ``$18`` is wrong, as it was in the paper.
* ``lenient`` -- the project's earlier rule: strict extraction, then ``$``, ``%``, spaces, commas and a trailing
  ``.`` are dropped before the same comparison (so ``$18`` counts as 18).
* ``flexible`` -- the last number inside the last solution block, else the last number anywhere in the text;
  keeps a leading minus sign and ignores ``$``, ``%`` and thousands separators.
* ``math-verify`` -- the ``math-verify`` package's parser, with its signal-based timeouts switched off so that it
  works in any thread (Ray Tune runs trials outside the main thread).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

THINK_START = "<thinking>"
THINK_END = "</thinking>"
SOLUTION_START = "<solution>"
SOLUTION_END = "</solution>"
TAGS: tuple[str, ...] = (THINK_START, THINK_END, SOLUTION_START, SOLUTION_END)

EXTRACTION_MODES: tuple[str, ...] = ("strict", "lenient", "flexible", "math-verify")

# The paper's whole-format regex: optional leading whitespace, a thinking block, anything, then a solution block
# and optional trailing whitespace. MULTILINE makes ^ and $ match at line boundaries, as in the paper's code.
STRICT_FORMAT = re.compile(
    r"^[\s]{0,}"
    + re.escape(THINK_START)
    + r".+?"
    + re.escape(THINK_END)
    + r".*?"
    + re.escape(SOLUTION_START)
    + r"(.+?)"
    + re.escape(SOLUTION_END)
    + r"[\s]{0,}$",
    flags=re.MULTILINE | re.DOTALL,
)
_STRICT_FALLBACK = re.compile(re.escape(SOLUTION_START) + r".*?([\d\.\,]{1,})", flags=re.DOTALL)
_SOLUTION_BLOCK = re.compile(re.escape(SOLUTION_START) + r"(.*?)(?:" + re.escape(SOLUTION_END) + r"|$)", re.DOTALL)
# A number: a minus sign unless it follows a word (so `10-5` is not -5), digits with optional thousands
# separators, optional decimals.
_NUMBER = re.compile(r"(?:(?<![\w)])-)?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?")


def completion_text(completion: Any) -> str:
    """The text of a completion in either of TRL's shapes: a string, or a list of chat messages."""
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return str(completion.get("content") or "")
    if isinstance(completion, Iterable):
        parts = [m.get("content") or "" for m in completion if isinstance(m, Mapping)]
        return "".join(str(p) for p in parts)
    return str(completion)


def _strip_number(text: str) -> str:
    return text.replace("$", "").replace("%", "").replace(",", "").replace(" ", "").strip()


def _reference_normal(text: str) -> str:
    """The reference code's normal form of an answer: ends stripped, commas removed (nothing else)."""
    return text.strip().replace(",", "")


def solution_text(text: str) -> str | None:
    """The raw text the reference takes as the answer (unstripped; None when neither pattern matches).

    `check_answer` scores this text as the reference did; evaluation strips it and drops empty answers.
    """
    found = STRICT_FORMAT.search(text) or _STRICT_FALLBACK.search(text)
    return None if found is None else found.group(1)


def _extract_strict(text: str) -> str | None:
    raw = solution_text(text)
    if raw is None:
        return None
    answer = raw.strip()
    return answer if _reference_normal(answer) else None


def _extract_lenient(text: str) -> str | None:
    answer = _extract_strict(text)
    if answer is None:
        return None
    return normalize_number(answer) or None


def _last_number(text: str) -> str | None:
    found = _NUMBER.findall(text.replace("$", ""))
    if not found:
        return None
    return _strip_number(found[-1])


def _extract_flexible(text: str) -> str | None:
    blocks = _SOLUTION_BLOCK.findall(text)
    for block in reversed(blocks):
        number = _last_number(block)
        if number is not None:
            return number
    return _last_number(text)


def _extract_math_verify(text: str) -> str | None:
    from math_verify import parse  # imported lazily: it pulls in sympy

    blocks = _SOLUTION_BLOCK.findall(text)
    target = blocks[-1] if blocks else text
    try:
        parsed = parse(target, parsing_timeout=None)
        if not parsed and target is not text:
            parsed = parse(text, parsing_timeout=None)
    except Exception:  # math-verify raises many parser-specific types on odd input; no answer is the result
        return None
    if not parsed:
        return None
    value = parsed[0]
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value).strip() or None
    if math.isfinite(number) and number == int(number):
        return str(int(number))
    return repr(number)


_EXTRACTORS = {
    "strict": _extract_strict,
    "lenient": _extract_lenient,
    "flexible": _extract_flexible,
    "math-verify": _extract_math_verify,
}


def extract_answer(text: str, mode: str = "strict") -> str | None:
    """The final answer a completion gives, or None when it gives none (see the module docstring for modes)."""
    try:
        extractor = _EXTRACTORS[mode]
    except KeyError:
        raise ValueError(f"unknown extraction mode {mode!r}; choose one of {', '.join(EXTRACTION_MODES)}") from None
    return extractor(text or "")


def normalize_number(text: str) -> str:
    """Canonical text of a numeric answer: no commas, `$`, `%` or spaces, no trailing `.0`/`.00`."""
    cleaned = _strip_number(text).rstrip(".")
    if re.fullmatch(r"-?\d+\.0+", cleaned):
        cleaned = cleaned.split(".")[0]
    return cleaned


def to_float(text: str | None) -> float | None:
    """The numeric value of an answer string, or None when it is not a number."""
    if text is None:
        return None
    try:
        value = float(normalize_number(text))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def is_correct(prediction: str | None, gold: str, tolerance: float = 1e-6) -> bool:
    """The reference's comparison: after stripping the ends and removing commas, equal text or floats closer than
    `tolerance`. Nothing else is normalised (``$18`` is not 18); the lenient mode normalises at extraction."""
    if prediction is None:
        return False
    pred, expected = _reference_normal(prediction), _reference_normal(str(gold))
    if not pred or not expected:
        return False
    if pred == expected:
        return True
    try:
        return abs(float(pred) - float(expected)) < tolerance
    except ValueError:
        return False


@dataclass(frozen=True)
class Metrics:
    """Accuracy and the paper's precision/recall/F1 over a set of graded records.

    The paper counts TP = extracted and correct, FP = extracted and wrong, FN = nothing extracted. When every
    item has a gold answer, F1 = 2·TP / (2·TP + FP + FN) = 2·acc / (1 + acc): it carries no information beyond
    accuracy, which is why accuracy is the headline metric.
    """

    n: int
    correct: int
    extracted: int
    accuracy: float
    extraction_rate: float
    precision: float
    recall: float
    f1: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def score(records: Iterable[Mapping[str, Any]]) -> Metrics:
    """Metrics over records carrying `correct` (bool) and `extracted` (bool, or the extracted answer / None)."""
    n = correct = extracted = 0
    for record in records:
        n += 1
        got = record.get("extracted")
        has_answer = got if isinstance(got, bool) else got is not None
        extracted += int(bool(has_answer))
        correct += int(bool(record.get("correct")))
    tp, fp, fn = correct, extracted - correct, n - extracted
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Metrics(
        n=n,
        correct=correct,
        extracted=extracted,
        accuracy=correct / n if n else 0.0,
        extraction_rate=extracted / n if n else 0.0,
        precision=precision,
        recall=recall,
        f1=f1,
    )


def f1_from_accuracy(accuracy: float) -> float:
    """The paper's F1 implied by an accuracy when every item has a gold answer: 2·acc / (1 + acc)."""
    return 2 * accuracy / (1 + accuracy) if accuracy > -1 else 0.0


def grade(completion: Any, gold: str, mode: str = "strict") -> dict[str, Any]:
    """One record's grading: the extracted answer under `mode` and whether it is correct."""
    answer = extract_answer(completion_text(completion), mode)
    return {"extracted": answer, "correct": is_correct(answer, gold)}
