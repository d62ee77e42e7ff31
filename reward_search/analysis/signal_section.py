"""The graded selection signal in the report: each finalize job's gold log-probability against the baseline, paired
question by question, and the three-line summary the demo prints."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reward_search.analysis.document import Paragraph, Section, Table, fmt, fmt_ci, fmt_signed
from reward_search.analysis.rundata import FinalJobView, RunData
from reward_search.analysis.signal import SignalDifference, paired_signal_difference
from reward_search.training.gold_logprob import COLUMN


@dataclass(frozen=True)
class JobSignal:
    """One finalize job's mean gold log-probability on a split and its paired difference to the baseline."""

    job: FinalJobView
    mean: float
    versus_baseline: SignalDifference | None


def _values(data: RunData, job: FinalJobView, split: str) -> dict[int, float] | None:
    frame = data.job_records(job, split)
    if frame is None or COLUMN not in frame.columns:
        return None
    return {int(i): float(v) for i, v in zip(frame["index"], frame[COLUMN], strict=True) if np.isfinite(v)}


def job_signals(data: RunData, split: str = "selection", n_resamples: int = 10_000, seed: int = 0) -> list[JobSignal]:
    """Every finished finalize job with the signal recorded, paired with the baseline on the questions both have."""
    jobs = [j for j in data.jobs if j.done]
    baseline = next((j for j in jobs if j.kind == "baseline"), None)
    base = _values(data, baseline, split) if baseline is not None else None
    out = []
    for job in jobs:
        values = _values(data, job, split)
        if not values:
            continue
        diff = None
        shared = sorted(set(values) & set(base or {}))
        if base and job is not baseline and shared:
            first, second = [values[i] for i in shared], [base[i] for i in shared]
            diff = paired_signal_difference(first, second, (job.name, "baseline"), n_resamples, seed=seed)
        out.append(JobSignal(job, float(np.mean(list(values.values()))), diff))
    return out


def signal_section(data: RunData, n_resamples: int, seed: int) -> Section:
    section = Section("signal", "Graded signal: gold log-probability against the baseline")
    rows = []
    for split, label in (("selection", data.selection_split), ("test", "test")):
        for s in job_signals(data, split, n_resamples, seed):
            d = s.versus_baseline
            rows.append(
                (
                    s.job.name,
                    s.job.kind,
                    label,
                    fmt(s.mean, 4),
                    "—" if d is None else fmt(d.difference, 4),
                    "—" if d is None else fmt_ci(d.low, d.high, 4),
                    "—" if d is None else str(d.n),
                )
            )
    if not rows:
        return section.add(Paragraph("No finalize job recorded the gold log-probability (an older run).", note=True))
    return section.add(
        Paragraph(
            "The mean per-token log-probability of the gold worked solutions under each job's adapter, and its "
            "difference to the base-rewards-only baseline on the same questions (95% paired bootstrap interval over "
            "questions). It moves after a few steps even where accuracy cannot, and uses no candidate's reward."
        ),
        Table(("job", "kind", "split", "gold log-prob", "minus baseline", "95% CI", "n"), tuple(rows)),
    )


def summary_lines(data: RunData, n_resamples: int = 10_000, seed: int = 0) -> list[str]:
    """The best reward (on the selection split); on test, the best recipe's accuracy against the baseline's, the
    best recipe's and the random control's gold log-prob against the baseline's, and the untrained model."""
    ranked = data.ranked()
    best = ranked[0] if ranked else None
    lines = [
        "best reward: "
        + (
            "none screened"
            if best is None
            else f"{best.name} (round {best.round}, accuracy {fmt(best.accuracy)}, "
            f"gold log-prob {fmt(best.gold_logprob, 4)} on the {data.selection_split} split)"
        )
    ]
    # on test, the one evaluation every finalize job has (controls may skip dev); by name: top_k jobs share a kind
    signals = job_signals(data, "test", n_resamples, seed)
    best_recipe = (data.finalize or {}).get("best_recipe")
    chosen = next((s for s in signals if s.job.name == best_recipe), None)
    control = next((s for s in signals if s.job.kind == "random"), None)
    recipe = f"best recipe {best_recipe}" if best_recipe else "best recipe (finalize has not run)"
    planned = data.finalize is None or any(job.kind == "random" for job in data.jobs)
    shown = [(recipe, chosen)] + ([("random control", control)] if planned else [])
    for label, s in shown:  # no random-control line where finalize ran without one (finalize.random_control)
        d = s.versus_baseline if s is not None else None
        lines.append(
            f"{label}: "
            + (
                "no signal recorded"
                if d is None
                else f"gold log-prob {fmt(d.first_mean, 4)} vs baseline "
                f"{fmt(d.second_mean, 4)}: {fmt_signed(d.difference, 4)} {fmt_ci(d.low, d.high, 4)} "
                f"over {d.n} test questions"
            )
        )
    from reward_search.analysis.final_sections import best_vs_baseline_summary_line, untrained_summary_line

    accuracy = best_vs_baseline_summary_line(data, n_resamples, seed)
    if accuracy is not None:  # the headline: does the chosen recipe answer more test questions than the baseline?
        lines.insert(1, accuracy)
    if data.untrained is not None:  # finalize.untrained: the base model without training, strict and flexible
        lines.append(untrained_summary_line(data, n_resamples, seed))
    return lines
