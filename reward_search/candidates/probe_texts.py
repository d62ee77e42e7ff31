"""Realistic labelled completions for the probes, built from GSM8K worked solutions (pure functions, no I/O).

Wrong answers look like a model's mistakes, not like a marker: an arithmetic slip in one step propagated through
every later step (GSM8K's `<<expr=result>>` annotations are re-evaluated), stopping at an intermediate result,
an off-by-a-little final step, or transposed digits. Correct and wrong completions share the question, the
format and the style of reasoning, so a (correct, wrong) pair differs only in what a grader cares about.
"""

from __future__ import annotations

import ast
import operator
import random
import re
from dataclasses import dataclass

FORMATS: tuple[str, ...] = ("tags", "plain", "hashes", "boxed", "bold")
WRONG_KINDS: tuple[str, ...] = ("slip", "intermediate", "off_by", "digits")
_ANNOTATION = re.compile(r"<<([^=<>]*)=([^<>]*)>>")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


@dataclass(frozen=True)
class Solution:
    """One GSM8K item: question, gold answer, and its worked lines with annotations kept."""

    question: str
    answer: str
    lines: tuple[str, ...]

    @property
    def steps(self) -> tuple[str, ...]:
        return tuple(_ANNOTATION.sub("", line) for line in self.lines) or ("Compute it.",)


def parse_solution(question: str, answer_field: str) -> Solution:
    work, _, gold = answer_field.rpartition("####")
    lines = tuple(s.strip() for s in work.strip().splitlines() if s.strip())
    return Solution(question, gold.strip().replace(",", ""), lines)


def render(reasoning: str, answer: str, fmt: str) -> str:
    """A completion in one of the formats models actually produce."""
    if fmt == "tags":
        return f"<thinking>\n{reasoning}\n</thinking>\n<solution>{answer}</solution>"
    if fmt == "plain":
        return f"{reasoning}\nSo the answer is {answer}."
    if fmt == "hashes":
        return f"{reasoning}\n#### {answer}"
    if fmt == "boxed":
        return f"{reasoning}\nThe final answer is $\\boxed{{{answer}}}$."
    return f"{reasoning}\n\n**Answer:** {answer}"


def _evaluate(expression: str) -> float | None:
    """+, -, *, / over numbers only (no names, no calls); None for anything else."""
    try:
        tree = ast.parse(expression.replace("x", "*").replace(",", ""), mode="eval")
    except SyntaxError:
        return None

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        raise ValueError("not arithmetic")

    try:
        return walk(tree.body)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None


def number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")


def _replace_numbers(text: str, mapping: dict[str, str]) -> str:
    if not mapping:
        return text
    pattern = re.compile(r"(?<![\d.])(" + "|".join(re.escape(k) for k in sorted(mapping, key=len)[::-1]) + r")(?![\d])")
    return pattern.sub(lambda m: mapping[m.group(1)], text)


def slipped(solution: Solution, step: int, delta: float) -> tuple[str, str] | None:
    """(reasoning, final answer) after result `step` is off by `delta`, propagated; None if the answer survives."""
    annotations = [(i, m) for i, line in enumerate(solution.lines) for m in _ANNOTATION.finditer(line)]
    if step >= len(annotations):
        return None
    mapping: dict[str, str] = {}
    for index, (_, match) in enumerate(annotations[step:], start=step):
        expression, result = match.group(1), match.group(2).strip()
        value = _evaluate(result) if index == step else _evaluate(_replace_numbers(expression, mapping))
        if value is None:
            return None
        new = number_text(value + delta if index == step else value)
        if new != result:
            mapping[result] = new
    final = mapping.get(solution.answer)
    if final is None or final == solution.answer:
        return None
    first = annotations[step][0]
    lines = [
        _ANNOTATION.sub("", line) if i < first else _replace_numbers(_ANNOTATION.sub("", line), mapping)
        for i, line in enumerate(solution.lines)
    ]
    return "\n".join(lines), final


def _intermediate(solution: Solution) -> tuple[str, str] | None:
    """Reporting the wrong quantity: the last intermediate result that differs from the gold, as the final answer."""
    results = [m.group(2).strip() for line in solution.lines for m in _ANNOTATION.finditer(line)]
    for index in range(len(results) - 1, -1, -1):
        value = _evaluate(results[index])
        if value is not None and number_text(value) != solution.answer:
            return _final_changed(solution, number_text(value))
    return None


def _final_changed(solution: Solution, wrong: str) -> tuple[str, str]:
    steps = list(solution.steps)
    steps[-1] = _replace_numbers(steps[-1], {solution.answer: wrong})
    return "\n".join(steps), wrong


def wrong_completion(solution: Solution, kind: str, rng: random.Random) -> tuple[str, str]:
    """(reasoning, wrong answer) of the given kind; falls back to an off-by-a-little answer when impossible."""
    gold = _evaluate(solution.answer)
    made: tuple[str, str] | None = None
    if kind == "slip":
        count = sum(len(_ANNOTATION.findall(line)) for line in solution.lines)
        for step in rng.sample(range(count), k=count) if count else ():
            made = slipped(solution, step, rng.choice((1, -1, 2, 10, -10)))
            if made is not None and _evaluate(made[1]) is not None and float(made[1]).is_integer():
                break
    elif kind == "intermediate":
        made = _intermediate(solution)
    elif kind == "digits" and gold is not None and len(solution.answer.lstrip("-")) >= 2:
        digits = solution.answer
        swapped = digits[:-2] + digits[-1] + digits[-2]
        made = _final_changed(solution, swapped if swapped != digits else digits + "0")
    if made is None or made[1] == solution.answer:
        offset = rng.choice((1, -1, 2, -2, 3))
        made = _final_changed(solution, number_text((gold or 0.0) + offset))
    return made
