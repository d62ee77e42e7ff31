"""Behavioural probes: the policy's own rollouts from the bank (candidates/bank.py), scored by a candidate in the
sandbox, in calls it cannot tell apart from training.

Every call is what training sends: whole groups (one prompt's samples, consecutive), `prompts_per_call` prompts,
chat messages with the training system prompt, the gold `answer` column. Which groups, in which order, and where
the repeats fall are drawn from `draw_seed` (the run's secret and the candidate's id), so one candidate gets one
verdict on one bank. Validation makes at least the re-probe interval's number of calls, so a reward that changes
after a few calls changes here. A candidate passes when every call returns finite numbers within the time budget,
the same batch again (reordered) and in two fresh workers scores every completion as its first call did, its scores
are not all equal, and in no format training produces does it prefer the wrong answer in most decisive pairs (a
correct and a wrong completion of one question that score differently). A weaker preference is a warning. The
report (stored with the candidate) holds the pre-screen (candidates/prescreen.py) and one bank group in chat form
with its scores, re-scored during training to catch a change of behaviour.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from statistics import fmean
from typing import Any

from reward_search.candidates.bank import Bank, BankRow, default_bank
from reward_search.candidates.prescreen import prescreen
from reward_search.candidates.probe_texts import Solution, parse_solution, render
from reward_search.candidates.sandbox import CallResult, CandidateRunner
from reward_search.candidates.settings import CandidatesConfig, ProbeConfig

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


@dataclass(frozen=True)
class BankProbe:
    """One bank completion as a probe: its row (or a synthetic edge/format variant of one) and its place."""

    row: int  # the row's index in `Bank.rows`, or -1 for a variant
    group: int
    prompt: tuple[dict[str, str], ...]
    text: str
    answer: str
    correct: bool | None  # None: an edge case (empty, truncated, ...), in no pair
    format: str


@dataclass
class _Batch:
    name: str
    probes: list[BankProbe]
    check: str = ""  # "", "repeat" (the same completions again, reordered) or "fresh" (in a new worker)


def draw_seed(secret: str | int | None, key: str, bank: Bank) -> int:
    """The probes' seed for one candidate: from the run's secret (else the bank's fingerprint) and its id."""
    base = bank.fingerprint if secret is None else str(secret)
    return int.from_bytes(hashlib.sha256(f"{base}:{key}".encode()).digest()[:8], "big")


def _variants(group: tuple[BankRow, ...], index: int, config: ProbeConfig) -> list[BankProbe]:
    """Completions training also meets: empty, cut off, very long, repeated tags, and a `<think>` format pair."""
    good = next((r for r in group if r.correct), group[0])
    bad = next((r for r in group if not r.correct), group[-1])
    filler = (good.completion + "\n") * (config.long_completion_chars // (len(good.completion) + 1) + 1)
    edge = {
        "empty": "",
        "truncated": good.completion[: max(1, len(good.completion) // 2)],
        "very_long": filler,
        "repeated_tags": good.completion + f"<solution>{good.answer}</solution>" * 3,
    }
    made = [BankProbe(-1, index, good.prompt, text, good.answer, None, name) for name, text in edge.items()]
    for row in (good, bad):
        made.append(
            BankProbe(-1, index, row.prompt, f"<think>\n{row.completion}\n</think>", row.answer, row.correct, "think")
        )
    return made


def _bank_groups(bank: Bank, config: ProbeConfig, rng: random.Random) -> list[list[BankProbe]]:
    """The bank's groups as probes (in a secret order), with the variant groups of two of its questions."""
    groups: list[list[BankProbe]] = []
    number = 0
    for index, group in enumerate(bank.groups):
        probes = []
        for row in group:
            probes.append(BankProbe(number, index, row.prompt, row.completion, row.answer, row.correct, row.format))
            number += 1
        groups.append(probes)
    for index in rng.sample(range(len(bank.groups)), k=min(2, len(bank.groups))):
        groups.append(_variants(bank.groups[index], index, config))
    rng.shuffle(groups)
    return groups


def probe_batches(config: ProbeConfig, bank: Bank | None = None, key: str = "", min_calls: int = 0) -> list[_Batch]:
    """Every probe call in order: training-sized batches of whole groups (`prompts_per_call` prompts), chat form,
    the same batches again reordered until `min_calls` calls are made, then two of them each in a fresh worker. The
    draws are seeded by `draw_seed`, so a candidate gets the same calls every time on the same bank."""
    bank = bank or default_bank()
    rng = random.Random(draw_seed(config.seed, key, bank))
    groups = _bank_groups(bank, config, rng)
    per = config.prompts_per_call
    first = [_Batch(f"batch_{i}", [p for g in groups[i : i + per] for p in g]) for i in range(0, len(groups), per)]
    calls = list(first)
    order = rng.sample(range(len(first)), k=len(first))
    for number in range(max(min_calls, len(first) + 3) - len(first) - 2):
        batch = first[order[number % len(first)]]
        calls.append(_Batch(batch.name, _reordered(batch.probes, rng), "repeat"))
    for target in rng.sample(first, k=min(2, len(first))):  # two fresh workers: a per-worker draw rarely repeats twice
        calls.append(_Batch(target.name, _reordered(target.probes, rng), "fresh"))
    return calls


def _reordered(probes: list[BankProbe], rng: random.Random) -> list[BankProbe]:
    """The same completions, groups in another order and each group shuffled, still grouped per prompt."""
    by_group: dict[int, list[BankProbe]] = {}
    for probe in probes:
        by_group.setdefault(probe.group, []).append(probe)
    keys = list(by_group)
    rng.shuffle(keys)
    out: list[BankProbe] = []
    for group in keys:
        members = list(by_group[group])
        rng.shuffle(members)
        out += members
    return out


def _run(runner: CandidateRunner, source: str, entry: str, batch: _Batch) -> CallResult:
    """One call in the form training sends: chat prompts and completions, the gold `answer` column."""
    prompts = [[dict(m) for m in p.prompt] for p in batch.probes]
    completions = [[{"role": "assistant", "content": p.text}] for p in batch.probes]
    return runner.call(source, entry, prompts, completions, answer=[p.answer for p in batch.probes])


Done = list[tuple[_Batch, list[float]]]


def _call_all(runner: CandidateRunner, source: str, entry: str, calls: list[_Batch], config, report) -> Done | None:
    """Make every probe call; None (with the reason in the report) at the first failure or over-budget call."""
    done: Done = []
    worst_ms = total_ms = 0.0
    scored = 0
    for batch in calls:
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
        total_ms, scored = total_ms + result.elapsed_ms, scored + len(batch.probes)
        report["max_ms_per_completion"] = round(worst_ms, 4)
        report["ms_per_completion"] = round(total_ms / scored, 4)
        if worst_ms > config.max_ms_per_completion:
            report["reasons"].append(
                f"too slow: {worst_ms:.1f} ms per completion in {label} (budget {config.max_ms_per_completion:g} ms)"
            )
            return None
        done.append((batch, [float(s) for s in result.scores if s is not None]))
    return done


def _consistency(done: Done, report: dict[str, Any]) -> None:
    """The same batch again (reordered: order independence, and no change over calls) and in a fresh worker must
    score each completion as its first call did."""
    first: dict[int, float] = {}
    for batch, scores in done:
        if not batch.check:
            first.update((id(p), v) for p, v in zip(batch.probes, scores, strict=True))
    report["deterministic"] = report["order_independent"] = report["fresh_worker_agrees"] = True
    for number, (batch, scores) in enumerate(done, start=1):
        if all(first[id(p)] == v for p, v in zip(batch.probes, scores, strict=True)):
            continue
        if batch.check == "fresh":
            report["fresh_worker_agrees"] = False
            report["reasons"].append("hidden state: the same batch scored differently in a fresh worker")
        elif report["deterministic"]:
            report["deterministic"] = report["order_independent"] = False
            report["reasons"].append(
                f"non-deterministic or order-dependent: the same completions scored differently at call {number}"
            )


def _first_scores(done: Done) -> list[tuple[BankProbe, float]]:
    return [(p, v) for batch, scores in done if not batch.check for p, v in zip(batch.probes, scores, strict=True)]


def decisive_pairs(scored: list[tuple[BankProbe, float]], tolerance: float) -> dict[str, tuple[int, int]]:
    """Per format: (decisive pairs, of them wrong scored higher) over the (correct, wrong) pairs of one group in
    one format; a pair whose scores differ by no more than `tolerance` is not decisive."""
    cells: dict[tuple[int, str], dict[bool, list[float]]] = {}
    for probe, value in scored:
        if probe.correct is not None:
            cells.setdefault((probe.group, probe.format), {True: [], False: []})[probe.correct].append(value)
    out: dict[str, tuple[int, int]] = {}
    for (_, fmt), cell in cells.items():
        decisive, wrong = out.get(fmt, (0, 0))
        for good in cell[True]:
            for bad in cell[False]:
                if abs(good - bad) > tolerance:
                    decisive, wrong = decisive + 1, wrong + (bad > good)
        out[fmt] = (decisive, wrong)
    return out


def _statistics(done: Done, config: ProbeConfig, report: dict[str, Any]) -> None:
    scored = _first_scores(done)
    every = [v for _, v in scored]
    correct = [v for p, v in scored if p.correct]
    wrong = [v for p, v in scored if p.correct is False]
    by_format = decisive_pairs(scored, 0.01 * (max(every) - min(every)))
    pairs = sum(d for d, _ in by_format.values())
    wrong_higher = sum(w for _, w in by_format.values())
    report.update(
        score_min=min(every),
        score_max=max(every),
        mean_correct=fmean(correct) if correct else 0.0,
        mean_wrong=fmean(wrong) if wrong else 0.0,
        pairs=pairs,
        pairs_wrong_preferred=wrong_higher,
        pairs_correct_preferred=pairs - wrong_higher,
        pairs_by_format={f: list(v) for f, v in sorted(by_format.items())},
    )
    bad = [
        (f, d, w)
        for f, (d, w) in sorted(by_format.items())
        if d >= config.min_decisive and w > config.anti_correct_share * d
    ]
    if max(every) - min(every) <= config.min_score_spread:
        report["reasons"].append(f"uninformative: every probe scored {every[0]:g} (zero GRPO advantage)")
    elif bad:
        fmt, decisive, wrong_count = bad[0]
        report["reasons"].append(
            f"anti-correct: a wrong answer scored higher than a correct one in {wrong_count} of {decisive} decisive "
            f"pairs (same question, format {fmt}) on the policy's own rollouts"
        )
    elif wrong_higher:
        report["warnings"].append(
            f"weak answer signal: wrong answers scored higher in {wrong_higher} of {pairs} decisive pairs "
            f"(correct higher in {pairs - wrong_higher}); mean correct {report['mean_correct']:.3g} vs wrong "
            f"{report['mean_wrong']:.3g}"
        )


def _reprobe_set(done: Done, size: int, rng: random.Random) -> list[dict[str, Any]]:
    """One bank group, drawn in secret, in training's chat form with its validated scores (spot re-probes)."""
    scored = [(p, v) for p, v in _first_scores(done) if p.row >= 0]
    groups = sorted({p.group for p, _ in scored})
    group = rng.choice(groups)
    chosen = [(p, v) for p, v in scored if p.group == group][:size]
    return [
        {
            "prompt": [dict(m) for m in p.prompt],
            "completion": [{"role": "assistant", "content": p.text}],
            "answer": p.answer,
            "score": v,
        }
        for p, v in chosen
    ]


def run_probes(
    runner: CandidateRunner,
    source: str,
    entry: str,
    config: ProbeConfig | None = None,
    *,
    bank: Bank | None = None,
    key: str = "",
    min_calls: int | None = None,
) -> dict[str, Any]:
    """Probe a candidate in `runner`'s sandbox on `bank` (default: the shipped one); `key` (the candidate's id)
    seeds the draws with the run's secret; at least `min_calls` calls (default: the default re-probe interval).
    Returns the report (``passed``, ``reasons``, ``warnings``, ``prescreen``)."""
    config = config or ProbeConfig()
    bank = bank or default_bank()
    report: dict[str, Any] = {"passed": False, "reasons": [], "warnings": [], "calls": 0, "bank": bank.fingerprint}
    if min_calls is None:  # the default re-probe interval: a reward that changes after that many calls changes here
        min_calls = CandidatesConfig().reprobe_every
    calls = probe_batches(config, bank, key, min_calls)
    done = _call_all(runner, source, entry, calls, config, report)
    if done is None:
        return report
    _consistency(done, report)
    _statistics(done, config, report)
    rng = random.Random(draw_seed(config.seed, key + ":reprobe", bank))
    report["reprobe"] = _reprobe_set(done, max(4, config.prompts_per_call), rng)
    report["prescreen"] = prescreen(bank, _first_scores(done), report.get("ms_per_completion", 0.0))
    report["passed"] = not report["reasons"]
    return report
