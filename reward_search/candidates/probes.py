"""Behavioural probes: realistic labelled completions, scored by a candidate in the sandbox, in calls it cannot
tell apart from training.

Every call is shaped like a training batch (several questions, several completions each, string or chat form,
varied sizes); the labelled completions sit at random positions drawn from a seed the candidate never sees. A
candidate passes when every call returns finite numbers within the time budget, a repeated batch, a permuted
batch and the same batch in a fresh worker all give the same per-completion scores, its scores are not all equal,
and it does not prefer the wrong answer in most matched pairs (same question, same format, a realistic wrong
answer). A weaker preference for wrong answers is a warning. The report is a plain dict stored with the candidate;
it includes a few probe completions and their scores, re-scored during training to catch a change of behaviour.
"""

from __future__ import annotations

import json
import random
import secrets
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from statistics import fmean
from typing import Any

from reward_search.candidates.probe_texts import FORMATS, WRONG_KINDS, Solution, parse_solution, render
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
BATCH_SIZES = (16, 8, 1, 12, 3)
Item = Solution  # the probes' unit: one GSM8K item with its worked solution


@dataclass(frozen=True)
class Probe:
    label: str
    question: str
    answer: str
    text: str
    pair: int = -1  # matched (correct, wrong) pairs share this index
    kind: str = ""  # the wrong answer's kind, or the format for correct ones


@cache
def _sample_items(limit: int) -> tuple[Solution, ...]:
    """The first `limit` GSM8K items of the packaged sample (offline, deterministic)."""
    items = []
    with SAMPLE.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            items.append(parse_solution(row["question"], row["answer"]))
            if len(items) >= limit:
                break
    return tuple(items)


def _label(correct: bool, fmt: str) -> str:
    return ("correct_" if correct else "wrong_") + ("formatted" if fmt == "tags" else "unformatted")


def build_probes(item: Solution, config: ProbeConfig, rng: random.Random | None = None) -> dict[str, Probe]:
    """One completion per label for one item (wrong ones: a propagated arithmetic slip)."""
    rng = rng or random.Random(0)
    reasoning = "\n".join(item.steps)
    wrong_reasoning, wrong = _wrong(item, "slip", rng)
    good = render(reasoning, item.answer, "tags")
    filler = (reasoning + "\n") * (config.long_completion_chars // (len(reasoning) + 1) + 1)
    texts = {
        "correct_formatted": good,
        "correct_unformatted": render(reasoning, item.answer, "plain"),
        "wrong_formatted": render(wrong_reasoning, wrong, "tags"),
        "wrong_unformatted": render(wrong_reasoning, wrong, "plain"),
        "empty": "",
        "truncated": good[: max(1, len(good) // 2)],
        "very_long": f"<thinking>\n{filler}</thinking>\n<solution>{item.answer}</solution>",
        "repeated_tags": f"<thinking>{reasoning}</thinking>" + f"<solution>{item.answer}</solution>" * 4,
    }
    return {label: Probe(label, item.question, item.answer, texts[label]) for label in LABELS}


def _wrong(item: Solution, kind: str, rng: random.Random) -> tuple[str, str]:
    from reward_search.candidates.probe_texts import wrong_completion

    return wrong_completion(item, kind, rng)


def matched_pairs(items: tuple[Solution, ...], rng: random.Random) -> list[Probe]:
    """For each item, two formats; in each, a correct completion and a wrong one of a varied kind."""
    probes: list[Probe] = []
    for index, item in enumerate(items):
        reasoning = "\n".join(item.steps)
        for fmt in rng.sample(FORMATS, k=2):
            kind = WRONG_KINDS[(index + len(probes)) % len(WRONG_KINDS)]
            wrong_reasoning, wrong = _wrong(item, kind, rng)
            pair = len(probes) // 2
            probes.append(
                Probe(_label(True, fmt), item.question, item.answer, render(reasoning, item.answer, fmt), pair, fmt)
            )
            probes.append(
                Probe(_label(False, fmt), item.question, item.answer, render(wrong_reasoning, wrong, fmt), pair, kind)
            )
    return probes


@dataclass
class _Batch:
    name: str
    probes: list[Probe]
    chat: bool = False
    check: str = ""  # "", "repeat", "permuted" or "fresh": compared with the batch of the same name
    order: list[int] = field(default_factory=list)  # for "permuted": position i holds original probe order[i]


def probe_batches(config: ProbeConfig, rng: random.Random | None = None) -> list[_Batch]:
    """All probe calls in the order they are made: training-shaped batches with the checks at random places."""
    rng = rng or random.Random(secrets.randbits(64) if config.seed is None else config.seed)
    items = _sample_items(config.problems)
    pool = matched_pairs(items, rng)
    for item in items[:2]:
        edge = build_probes(item, config, rng)
        pool += [edge[label] for label in ("empty", "truncated", "very_long", "repeated_tags")]
    rng.shuffle(pool)
    batches: list[_Batch] = []
    shape = rng.randrange(2)  # string and chat batches alternate from a secret start
    while pool:
        size = BATCH_SIZES[len(batches) % len(BATCH_SIZES)]
        chunk, pool = pool[:size], pool[size:]
        batches.append(_Batch(f"batch_{len(batches)}", chunk, chat=(len(batches) + shape) % 2 == 1))
    sized = [b for b in batches if len(b.probes) >= 4]
    target = rng.choice(sized)
    order = rng.sample(range(len(target.probes)), k=len(target.probes))
    checks = [
        _Batch(target.name, list(target.probes), target.chat, "repeat"),
        _Batch(target.name, [target.probes[i] for i in order], target.chat, "permuted", order),
    ]
    calls = list(batches)
    first = calls.index(target) + 1
    for check in checks:
        calls.insert(rng.randint(first, len(calls)), check)
    calls.append(_Batch(target.name, list(target.probes), target.chat, "fresh"))
    return calls


def _as_chat(probe: Probe) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    prompt = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": probe.question}]
    return prompt, [{"role": "assistant", "content": probe.text}]


def _run(runner: CandidateRunner, source: str, entry: str, batch: _Batch) -> CallResult:
    if batch.chat:
        shaped = [_as_chat(p) for p in batch.probes]
        prompts, completions = [s[0] for s in shaped], [s[1] for s in shaped]
    else:
        prompts, completions = [p.question for p in batch.probes], [p.text for p in batch.probes]
    return runner.call(source, entry, prompts, completions, answer=[p.answer for p in batch.probes])


def _call_all(
    runner: CandidateRunner, source: str, entry: str, config: ProbeConfig, report: dict[str, Any]
) -> list[tuple[_Batch, list[float]]] | None:
    """Make every probe call; None (with the reason in the report) at the first failure or over-budget call."""
    done: list[tuple[_Batch, list[float]]] = []
    worst_ms = 0.0
    for batch in probe_batches(config):
        if batch.check == "fresh":
            runner.restart(source, entry)  # hidden state (memoised randomness) does not survive a new worker
        result = _run(runner, source, entry, batch)
        report["calls"] += 1
        label = batch.name + (f" ({batch.check})" if batch.check else "")
        if not result.ok or result.scores is None:
            report["reasons"].append(f"probe {label}: {result.kind}: {result.error}")
            return None
        if any(s is None for s in result.scores):
            report["reasons"].append(f"probe {label}: every score must be a finite number, got null")
            return None
        worst_ms = max(worst_ms, result.elapsed_ms / len(batch.probes))
        report["max_ms_per_completion"] = round(worst_ms, 4)
        if worst_ms > config.max_ms_per_completion:
            report["reasons"].append(
                f"too slow: {worst_ms:.1f} ms per completion in {label} (budget {config.max_ms_per_completion:g} ms)"
            )
            return None
        done.append((batch, [float(s) for s in result.scores if s is not None]))
    return done


def _consistency(done: list[tuple[_Batch, list[float]]], report: dict[str, Any]) -> None:
    """Repeated, permuted and fresh-worker copies of one batch must score each completion the same."""
    originals = {b.name: s for b, s in done if not b.check}
    report["deterministic"] = report["order_independent"] = report["fresh_worker_agrees"] = True
    for batch, scores in done:
        base = originals[batch.name]
        if batch.check == "repeat" and scores != base:
            report["deterministic"] = False
            report["reasons"].append("non-deterministic: a repeated batch gave different scores")
        elif batch.check == "permuted" and scores != [base[i] for i in batch.order]:
            report["order_independent"] = False
            report["reasons"].append("order-dependent: the same completions in another order scored differently")
        elif batch.check == "fresh" and scores != base:
            report["fresh_worker_agrees"] = False
            report["reasons"].append("hidden state: the same batch scored differently in a fresh worker")


def _pairs(done: list[tuple[_Batch, list[float]]], tolerance: float) -> tuple[int, int, int]:
    """(pairs, pairs where wrong scored higher, pairs where correct scored higher) over the matched pairs; a
    difference within `tolerance` (a sliver of the score range, e.g. a length term over a few characters) is a tie."""
    by_pair: dict[int, dict[bool, float]] = {}
    for batch, scores in done:
        if batch.check:
            continue
        for probe, value in zip(batch.probes, scores, strict=True):
            if probe.pair >= 0:
                by_pair.setdefault(probe.pair, {})[probe.label.startswith("correct")] = value
    complete = [p for p in by_pair.values() if len(p) == 2]
    wrong_higher = sum(p[False] > p[True] + tolerance for p in complete)
    correct_higher = sum(p[True] > p[False] + tolerance for p in complete)
    return len(complete), wrong_higher, correct_higher


def _balanced_mean(by_label: dict[str, list[float]], labels: tuple[str, ...]) -> float:
    """The mean of the per-label means (balanced over formats), over the labels that occurred."""
    means = [fmean(by_label[label]) for label in labels if by_label[label]]
    return fmean(means) if means else 0.0


def _statistics(done: list[tuple[_Batch, list[float]]], config: ProbeConfig, report: dict[str, Any]) -> None:
    by_label: dict[str, list[float]] = {label: [] for label in LABELS}
    for batch, scores in done:
        if not batch.check:
            for probe, value in zip(batch.probes, scores, strict=True):
                by_label[probe.label].append(value)
    every = [v for values in by_label.values() for v in values]
    mean_correct = _balanced_mean(by_label, CORRECT_LABELS)
    mean_wrong = _balanced_mean(by_label, WRONG_LABELS)
    pairs, wrong_higher, correct_higher = _pairs(done, 0.01 * (max(every) - min(every)))
    share = wrong_higher / pairs if pairs else 0.0
    report.update(
        score_min=min(every),
        score_max=max(every),
        mean_correct=mean_correct,
        mean_wrong=mean_wrong,
        label_means={label: fmean(v) for label, v in by_label.items() if v},
        pairs=pairs,
        pairs_wrong_preferred=wrong_higher,
        pairs_correct_preferred=correct_higher,
    )
    if max(every) - min(every) <= config.min_score_spread:
        report["reasons"].append(f"uninformative: every probe scored {every[0]:g} (zero GRPO advantage)")
    elif share > config.anti_correct_share:
        report["reasons"].append(
            f"anti-correct: a realistic wrong answer scored higher than the correct one in {wrong_higher} of "
            f"{pairs} matched pairs (same question and format)"
        )
    elif wrong_higher or mean_wrong > mean_correct + 1e-9:
        report["warnings"].append(
            f"weak answer signal: wrong answers scored higher in {wrong_higher} of {pairs} matched pairs "
            f"(correct higher in {correct_higher}); mean correct {mean_correct:.3g} vs wrong {mean_wrong:.3g}"
        )


def _reprobe_set(done: list[tuple[_Batch, list[float]]], size: int) -> list[dict[str, Any]]:
    """A few string-shaped probe completions with their validated scores, for spot re-probes in training."""
    chosen: list[dict[str, Any]] = []
    for batch, scores in done:
        if batch.check:
            continue
        for probe, value in zip(batch.probes, scores, strict=True):
            if probe.pair >= 0 and len(chosen) < size:
                chosen.append(
                    {"prompt": probe.question, "completion": probe.text, "answer": probe.answer, "score": value}
                )
    return chosen


def run_probes(runner: CandidateRunner, source: str, entry: str, config: ProbeConfig | None = None) -> dict[str, Any]:
    """Probe a candidate in `runner`'s sandbox; returns the report (``passed``, ``reasons``, ``warnings``)."""
    config = config or ProbeConfig()
    report: dict[str, Any] = {"passed": False, "reasons": [], "warnings": [], "calls": 0}
    done = _call_all(runner, source, entry, config, report)
    if done is None:
        return report
    _consistency(done, report)
    _statistics(done, config, report)
    report["reprobe"] = _reprobe_set(done, 4)
    report["passed"] = not report["reasons"]
    return report
