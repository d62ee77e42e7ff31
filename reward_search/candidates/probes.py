"""Behavioural probes: labelled completions built from real GSM8K items, scored by a candidate in the sandbox.

A candidate passes when every call returns a list of finite numbers of the right length, a repeated call gives
the same scores, the time per completion is within budget, it does not prefer wrong answers to correct ones
(anti-correct) and its scores are not all equal (a constant reward gives GRPO zero advantage). The report is a
plain dict stored with the candidate.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from statistics import fmean
from typing import Any

from reward_search.candidates.sandbox import CallResult, CandidateRunner
from reward_search.candidates.settings import ProbeConfig

SAMPLE = Path(__file__).resolve().parent.parent / "task" / "data" / "gsm8k_sample" / "train.jsonl"
SYSTEM_PROMPT = "Think step by step inside <thinking></thinking>, then give the number in <solution></solution>."
LABELS = (
    "correct_formatted",
    "correct_unformatted",
    "wrong_formatted",
    "wrong_unformatted",
    "empty",
    "truncated",
    "very_long",
    "repeated_tags",
)
CORRECT_LABELS = ("correct_formatted", "correct_unformatted")
WRONG_LABELS = ("wrong_formatted", "wrong_unformatted")
_CALCULATOR = re.compile(r"<<[^>]*>>")


@dataclass(frozen=True)
class Item:
    question: str
    answer: str
    steps: tuple[str, ...]  # the worked solution's lines, calculator annotations removed


@dataclass(frozen=True)
class Probe:
    label: str
    question: str
    answer: str
    text: str


@cache
def _sample_items(limit: int) -> tuple[Item, ...]:
    """The first `limit` GSM8K items of the packaged sample (offline, deterministic)."""
    items = []
    with SAMPLE.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            work, _, gold = row["answer"].rpartition("####")
            steps = tuple(s.strip() for s in _CALCULATOR.sub("", work).strip().splitlines() if s.strip())
            items.append(Item(row["question"], gold.strip().replace(",", ""), steps or ("Compute it.",)))
            if len(items) >= limit:
                break
    return tuple(items)


def _wrong(answer: str) -> str:
    try:
        value = float(answer)
    except ValueError:
        return answer + "1"
    wrong = value * 2 + 7
    return str(int(wrong)) if wrong == int(wrong) else str(wrong)


def build_probes(item: Item, config: ProbeConfig) -> dict[str, Probe]:
    """One completion per label for one GSM8K item."""
    reasoning = "\n".join(item.steps)
    partial = "\n".join(item.steps[:-1]) or "I am not sure."
    wrong = _wrong(item.answer)
    good = f"<thinking>\n{reasoning}\n</thinking>\n<solution>{item.answer}</solution>"
    filler = (reasoning + "\n") * (config.long_completion_chars // (len(reasoning) + 1) + 1)
    texts = {
        "correct_formatted": good,
        "correct_unformatted": f"{reasoning}\nSo the answer is {item.answer}.",
        "wrong_formatted": f"<thinking>\n{partial}\n</thinking>\n<solution>{wrong}</solution>",
        "wrong_unformatted": f"{partial}\nSo the answer is {wrong}.",
        "empty": "",
        "truncated": good[: max(1, len(good) // 2)],
        "very_long": f"<thinking>\n{filler}</thinking>\n<solution>{item.answer}</solution>",
        "repeated_tags": f"<thinking>{reasoning}</thinking>" + f"<solution>{item.answer}</solution>" * 4,
    }
    return {label: Probe(label, item.question, item.answer, texts[label]) for label in LABELS}


def _as_chat(probe: Probe) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    prompt = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": probe.question}]
    return prompt, [{"role": "assistant", "content": probe.text}]


@dataclass
class _Batch:
    name: str
    probes: list[Probe]
    chat: bool = False


def probe_batches(config: ProbeConfig) -> list[_Batch]:
    """The probe calls: two mixed batches of 16 (string and chat shapes), graded batches, single completions."""
    items = _sample_items(config.problems)
    per_item = [build_probes(item, config) for item in items]
    mixed = [p for probes in per_item[:2] for p in probes.values()]
    graded = [probes[label] for probes in per_item for label in (*CORRECT_LABELS, *WRONG_LABELS)]
    batches = [_Batch("mixed_str_16", mixed), _Batch("mixed_chat_16", mixed, chat=True)]
    batches += [_Batch(f"graded_{i // 16}", graded[i : i + 16]) for i in range(0, len(graded), 16)]
    first = per_item[0]
    batches += [
        _Batch("single_correct", [first["correct_formatted"]]),
        _Batch("single_empty", [first["empty"]]),
        _Batch("single_chat", [first["wrong_formatted"]], chat=True),
    ]
    return batches


def _run(runner: CandidateRunner, source: str, entry: str, batch: _Batch) -> CallResult:
    if batch.chat:
        shaped = [_as_chat(p) for p in batch.probes]
        prompts, completions = [s[0] for s in shaped], [s[1] for s in shaped]
    else:
        prompts, completions = [p.question for p in batch.probes], [p.text for p in batch.probes]
    return runner.call(source, entry, prompts, completions, answer=[p.answer for p in batch.probes])


def run_probes(runner: CandidateRunner, source: str, entry: str, config: ProbeConfig | None = None) -> dict[str, Any]:
    """Probe a candidate in `runner`'s sandbox; returns the report (``passed`` and ``reasons`` included)."""
    config = config or ProbeConfig()
    report: dict[str, Any] = {"passed": False, "reasons": [], "calls": 0}
    by_label: dict[str, list[float]] = {label: [] for label in LABELS}
    all_scores: list[float] = []
    worst_ms = 0.0
    batches = probe_batches(config)
    results: list[list[float]] = []
    for batch in [*batches, batches[0]]:  # the first batch again at the end: determinism
        result = _run(runner, source, entry, batch)
        report["calls"] += 1
        if not result.ok or result.scores is None:
            report["reasons"].append(f"probe {batch.name}: {result.kind}: {result.error}")
            return report
        if any(s is None for s in result.scores):
            report["reasons"].append(f"probe {batch.name}: every score must be a finite number, got null")
            return report
        worst_ms = max(worst_ms, result.elapsed_ms / len(batch.probes))
        if worst_ms > config.max_ms_per_completion:
            report["reasons"].append(
                f"too slow: {worst_ms:.1f} ms per completion in {batch.name} "
                f"(budget {config.max_ms_per_completion:g} ms)"
            )
            report["max_ms_per_completion"] = round(worst_ms, 4)
            return report
        results.append([float(s) for s in result.scores if s is not None])
    report["deterministic"] = results[-1] == results[0]
    for batch, scores in zip(batches, results, strict=False):
        for probe, value in zip(batch.probes, scores, strict=True):
            by_label[probe.label].append(value)
            all_scores.append(value)
    mean_correct = fmean(fmean(by_label[label]) for label in CORRECT_LABELS)  # balanced over formats
    mean_wrong = fmean(fmean(by_label[label]) for label in WRONG_LABELS)
    report.update(
        score_min=min(all_scores),
        score_max=max(all_scores),
        mean_correct=mean_correct,
        mean_wrong=mean_wrong,
        label_means={label: fmean(v) for label, v in by_label.items() if v},
        max_ms_per_completion=round(worst_ms, 4),
    )
    reasons = report["reasons"]
    if not report.get("deterministic"):
        reasons.append("non-deterministic: a repeated call gave different scores")
    if max(all_scores) - min(all_scores) <= config.min_score_spread:
        reasons.append(f"uninformative: every probe scored {all_scores[0]:g} (zero GRPO advantage)")
    elif mean_correct < mean_wrong - 1e-9:
        reasons.append(f"anti-correct: mean score on correct answers {mean_correct:.3g} < on wrong {mean_wrong:.3g}")
    report["passed"] = not reasons
    return report
