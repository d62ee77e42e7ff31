"""The evolutionary proposer's library of reward primitives, written as real code that is copied into candidates.

Each primitive scores a batch ``(texts, questions, golds, **params) -> list[float]`` with values in [0, 1] (the
arithmetic check may go slightly negative). The functions here are emitted verbatim (``inspect.getsource``) into
candidate modules, so they may only use what the candidate policy allows (re, math, collections) and no private
attributes. Every primitive is monotone in the right direction on the validation probes (a correct, complete
answer never scores below a wrong, partial one), so any positive-weighted sum of them passes the anti-correct
probe, and each varies across the probes, so no combination is constant.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

# --- shared helpers (emitted into candidates when a primitive uses them) -------------------------------------


def _text(item):
    """The text of a completion or prompt: a string, a chat message, or a list of chat messages."""
    if item is None:
        return ""
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        return str(item.get("content") or "")
    if isinstance(item, list | tuple):
        return "".join(str(m.get("content") or "") for m in item if isinstance(m, dict))
    return str(item)


def _question(prompt):
    """The question in a prompt: the last user message of a chat, or the prompt text itself."""
    if isinstance(prompt, list | tuple):
        users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        if users:
            return str(users[-1].get("content") or "")
    return _text(prompt)


def _numbers(text):
    """Every number in `text` as a float (thousands separators and dollar signs ignored; `10-5` is not -5)."""
    clean = re.sub(r"(?<=\d),(?=\d{3})", "", text).replace("$", "")
    values = []
    for token in re.findall(r"(?:(?<![\w)])-)?\d+(?:\.\d+)?", clean):
        value = float(token)
        if math.isfinite(value):
            values.append(value)
    return values


def _solution(text):
    """The content of the last <solution>...</solution> block, or None."""
    blocks = re.findall(r"<solution>(.*?)</solution>", text, re.DOTALL)
    return blocks[-1] if blocks else None


def _final_answer(text, require_tag=False):
    """The last number in the last solution block; else (unless `require_tag`) the last number in the text."""
    block = _solution(text)
    if block is not None:
        found = _numbers(block)
        if found:
            return found[-1]
    if require_tag:
        return None
    found = _numbers(text)
    return found[-1] if found else None


def _gold(value):
    """The gold answer as a number, or None."""
    found = _numbers(str(value))
    return found[-1] if found else None


# --- primitives ------------------------------------------------------------------------------------------------


def _answer_closeness(texts, questions, golds, tolerance=0.1):
    """1 for the gold answer, decaying with the relative error as exp(-error / tolerance); 0 with no answer."""
    scores = []
    for text, gold in zip(texts, golds, strict=True):
        guess, target = _final_answer(text), _gold(gold)
        if guess is None or target is None:
            scores.append(0.0)
            continue
        error = abs(guess - target) / max(1.0, abs(target))
        scores.append(math.exp(-error / tolerance) if math.isfinite(error) else 0.0)
    return scores


def _exact_answer(texts, questions, golds, require_tag=True):
    """1 when the final answer equals the gold (inside <solution> when `require_tag`), else 0."""
    scores = []
    for text, gold in zip(texts, golds, strict=True):
        guess, target = _final_answer(text, require_tag), _gold(gold)
        hit = guess is not None and target is not None and abs(guess - target) < 1e-6
        scores.append(1.0 if hit else 0.0)
    return scores


def _strict_format(texts, questions, golds, partial_credit=0.25):
    """1 for exactly `<thinking>...</thinking><solution>...</solution>`; else `partial_credit` x share of tags
    that occur exactly once."""
    tags = ("<thinking>", "</thinking>", "<solution>", "</solution>")
    scores = []
    for text in texts:
        once = sum(1 for tag in tags if text.count(tag) == 1)
        whole = re.fullmatch(r"\s*<thinking>.+?</thinking>\s*<solution>[^<]+</solution>\s*", text, re.DOTALL)
        scores.append(1.0 if once == 4 and whole else partial_credit * once / 4)
    return scores


def _bare_number_solution(texts, questions, golds, partial_credit=0.3):
    """1 when the solution block holds only a number; `partial_credit` when it holds a number among words."""
    scores = []
    for text in texts:
        block = _solution(text)
        if block is None:
            scores.append(0.0)
        elif re.fullmatch(r"\s*-?\$?\d[\d,]*(?:\.\d+)?\s*", block):
            scores.append(1.0)
        else:
            scores.append(partial_credit if _numbers(block) else 0.0)
    return scores


def _step_structure(texts, questions, golds, target_steps=4):
    """Share of `target_steps` reached by the reasoning lines that contain a number (capped at 1)."""
    scores = []
    for text in texts:
        found = re.search(r"<thinking>(.*?)(?:</thinking>|$)", text, re.DOTALL)
        body = found.group(1) if found else text
        steps = [line for line in body.splitlines() if re.search(r"\d", line)]
        scores.append(min(len(steps), target_steps) / target_steps)
    return scores


def _arithmetic_consistency(texts, questions, golds, cap=3, penalty=0.25):
    """Checked `a op b = c` lines: +1/cap per correct one (up to cap), -penalty/cap per wrong one (up to cap)."""
    pattern = r"(?<![\d.+\-*/x])(-?\d+(?:\.\d+)?)\s*([-+*/x])\s*(\d+(?:\.\d+)?)\s*=\s*(-?\d+(?:\.\d+)?)"
    scores = []
    for text in texts:
        clean = re.sub(r"(?<=\d),(?=\d{3})", "", text).replace("$", "")
        good = bad = 0
        for left, op, right, result in re.findall(pattern, clean):
            a, b, c = float(left), float(right), float(result)
            if op == "+":
                value = a + b
            elif op == "-":
                value = a - b
            elif op in "*x":
                value = a * b
            else:
                value = a / b if b else math.inf
            if math.isfinite(value) and abs(value - c) <= 0.01 * max(1.0, abs(c)):
                good += 1
            else:
                bad += 1
        scores.append((min(good, cap) - penalty * min(bad, cap)) / cap)
    return scores


def _length_window(texts, questions, golds, low=150, high=1500):
    """1 for a length (characters) in [low, high]; rising linearly below `low`, falling linearly above `high`."""
    scores = []
    for text in texts:
        size = len(text.strip())
        if size < low:
            scores.append(size / low)
        elif size <= high:
            scores.append(1.0)
        else:
            scores.append(max(0.0, 1.0 - (size - high) / high))
    return scores


def _question_numbers(texts, questions, golds, min_share=0.6):
    """How many of the question's numbers the completion uses: the share of them found, over `min_share`, capped."""
    scores = []
    for text, question in zip(texts, questions, strict=True):
        given = set(_numbers(question))
        if not given:
            scores.append(0.0)
            continue
        used = given & set(_numbers(text))
        scores.append(min(1.0, len(used) / len(given) / min_share))
    return scores


def _group_agreement(texts, questions, golds, min_share=0.4):
    """1 when the answer is the strict majority answer among the batch's completions of the same question
    (held by at least `min_share` of them), else 0: self-consistency without the gold."""
    answers = [_final_answer(text) for text in texts]
    groups = {}
    for i, question in enumerate(questions):
        groups.setdefault(question, []).append(i)
    scores = [0.0] * len(texts)
    for members in groups.values():
        counts = {}
        for i in members:
            if answers[i] is not None:
                counts[answers[i]] = counts.get(answers[i], 0) + 1
        if len(members) < 2 or not counts:
            continue
        ranked = sorted(counts.values(), reverse=True)
        if (len(ranked) > 1 and ranked[1] == ranked[0]) or ranked[0] / len(members) < min_share:
            continue
        top = next(answer for answer, count in counts.items() if count == ranked[0])
        for i in members:
            if answers[i] == top:
                scores[i] = 1.0
    return scores


def _no_repetition(texts, questions, golds, tag_penalty=0.5):
    """Share of distinct non-empty lines, minus `tag_penalty` when a tag occurs more than once (floored at 0)."""
    tags = ("<thinking>", "</thinking>", "<solution>", "</solution>")
    scores = []
    for text in texts:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if not lines:
            scores.append(0.0)
            continue
        repeated = any(text.count(tag) > 1 for tag in tags)
        scores.append(max(0.0, len(set(lines)) / len(lines) - (tag_penalty if repeated else 0.0)))
    return scores


# --- the registry ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """A primitive's tunable parameter: its range and kind (float, int or bool)."""

    name: str
    low: float = 0.0
    high: float = 1.0
    kind: str = "float"

    def sample(self, rng) -> float | int | bool:
        if self.kind == "bool":
            return rng.random() < 0.5
        if self.kind == "int":
            return rng.randint(int(self.low), int(self.high))
        return round(rng.uniform(self.low, self.high), 3)

    def mutate(self, value, rng, scale: float) -> float | int | bool:
        """A perturbed value: a bool flips with probability scale/2; numbers move by about `scale` of the range."""
        if self.kind == "bool":
            return (not value) if rng.random() < scale / 2 else bool(value)
        span = (self.high - self.low) * scale
        moved = min(self.high, max(self.low, float(value) + rng.gauss(0.0, span)))
        return round(moved) if self.kind == "int" else round(moved, 3)


@dataclass(frozen=True)
class Primitive:
    """One scoring ingredient: a helper function copied into candidates, a phrase for descriptions, parameters."""

    key: str
    function: Callable[..., list[float]]
    phrase: str
    params: tuple[Param, ...] = ()
    short: str = ""  # for candidate names

    @property
    def helper(self) -> str:
        return self.function.__name__


_LIBRARY: tuple[Primitive, ...] = (
    Primitive(
        "answer_closeness", _answer_closeness, "closeness of the final answer to the gold",
        (Param("tolerance", 0.02, 0.5),), "close",
    ),
    Primitive(
        "exact_answer", _exact_answer, "an exactly correct final answer", (Param("require_tag", kind="bool"),), "exact"
    ),
    Primitive(
        "strict_format", _strict_format, "the strict thinking/solution format", (Param("partial_credit"),), "format"
    ),
    Primitive(
        "bare_number_solution", _bare_number_solution, "a bare number in the solution block",
        (Param("partial_credit", 0.0, 0.6),), "bare",
    ),
    Primitive(
        "step_structure", _step_structure, "reasoning steps that compute",
        (Param("target_steps", 2, 8, "int"),), "steps",
    ),
    Primitive(
        "arithmetic_consistency", _arithmetic_consistency, "correct `a op b = c` arithmetic",
        (Param("cap", 1, 5, "int"), Param("penalty", 0.0, 0.5)), "arith",
    ),
    Primitive(
        "length_window", _length_window, "a completion length within a window",
        (Param("low", 40, 300, "int"), Param("high", 1500, 4000, "int")), "length",
    ),
    Primitive(
        "question_numbers", _question_numbers, "use of the question's numbers",
        (Param("min_share", 0.3, 1.0),), "qnums",
    ),
    Primitive(
        "group_agreement", _group_agreement, "agreement with the group's majority answer",
        (Param("min_share", 0.3, 0.5),), "agree",
    ),
    Primitive(
        "no_repetition", _no_repetition, "no repeated lines or tags", (Param("tag_penalty", 0.0, 1.0),), "norep"
    ),
)  # fmt: skip
PRIMITIVES: dict[str, Primitive] = {p.key: p for p in _LIBRARY}
HELPERS: tuple[Callable[..., object], ...] = (_text, _question, _numbers, _solution, _final_answer, _gold)


@cache
def function_source(function: Callable[..., object]) -> str:
    """The source of a library function, as copied into candidates."""
    return inspect.getsource(function).strip() + "\n"


def helpers_for(primitives: list[Primitive]) -> list[str]:
    """Sources of the shared helpers the primitives need (transitively), in library order."""
    needed: set[str] = set()
    code = "\n".join(function_source(p.function) for p in primitives) + "_text(_question("
    changed = True
    while changed:
        changed = False
        for helper in HELPERS:
            if helper.__name__ not in needed and re.search(rf"\b{helper.__name__}\(", code):
                needed.add(helper.__name__)
                code += function_source(helper)
                changed = True
    return [function_source(h) for h in HELPERS if h.__name__ in needed]
