"""Report sections that audit evaluated configurations from their saved records: strict versus flexible accuracy,
and reward hacking (reward trends against dev accuracy, reasoning shape of correct and wrong answers).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from reward_search.analysis.audit import answer_shape, format_gaps, reward_hacking_audit
from reward_search.analysis.document import Paragraph, Section, Table, fmt
from reward_search.analysis.rundata import RunData, dev_points, finalize_dev_points

TOP_AUDITED = 5


@dataclass
class Audited:
    """One configuration to audit: its records on one split, its per-step curves and its dev accuracy points."""

    name: str
    split: str
    records: pd.DataFrame | None
    curves: pd.DataFrame | None
    dev: list[tuple[int, float]]


def audited(data: RunData) -> list[Audited]:
    """The top screened rewards (selection records) and the done finalize jobs (test records), seeds excluded."""
    steps = data.config.training.steps if data.config is not None else None
    items = []
    for entry in data.ranked()[:TOP_AUDITED]:
        items.append(
            Audited(
                entry.name,
                data.selection_split,
                data.trial_table(entry.trial_key, "selection", entry.trial_dir),
                data.trial_table(entry.trial_key, "curves", entry.trial_dir),
                dev_points(entry, data.report_every, steps),
            )
        )
    tune_points = finalize_dev_points(data.run_dir) if data.finalize is not None else {}
    for job in data.jobs:
        if job.kind == "seed" or not job.done:
            continue
        key, recorded = job.result.get("trial_key"), job.result.get("trial_dir")
        items.append(
            Audited(
                job.name,
                "test",
                data.job_records(job, "test"),
                data.trial_table(key, "curves", recorded),
                tune_points.get(job.name, []),
            )
        )
    return items


def format_section(items: list[Audited]) -> Section:
    section = Section("format", "Strict versus flexible accuracy")
    usable = [i for i in items if i.records is not None and {"correct_strict", "correct_flexible"} <= set(i.records)]
    gaps = format_gaps({f"{i.name}\x00{i.split}": i.records for i in usable})
    rows = []
    for gap in gaps:
        name, split = gap.name.split("\x00")
        rows.append(
            (
                name,
                split,
                str(gap.n),
                fmt(gap.strict_accuracy),
                fmt(gap.flexible_accuracy),
                fmt(gap.gap),
                str(gap.format_errors),
                fmt(gap.format_share_of_errors),
            )
        )
    section.add(
        Paragraph(
            "From the saved per-question records (no re-generation): accuracy with the strict extractor (the "
            "answer in the required format) and the flexible one (the last number). Format errors are wrong "
            "under strict and right under flexible; their share is of all strict errors."
        ),
        Table(
            ("configuration", "split", "n", "strict acc.", "flexible acc.", "gap", "format errors", "share of errors"),
            tuple(rows),
        ),
    )
    if not rows:
        section.add(Paragraph("No records with strict and flexible grading were found.", note=True))
    return section


def _shape_cells(stats) -> tuple[str, ...]:
    return (
        str(stats.n),
        fmt(stats.mean_chars, 0),
        fmt(stats.mean_tokens, 1),
        fmt(stats.mean_lines, 1),
        fmt(stats.mean_step_lines, 1),
        fmt(stats.share_with_steps, 2),
    )


def hacking_section(items: list[Audited]) -> Section:
    section = Section("hacking", "Reward-hacking audit")
    trend_rows, shape_rows, flagged = [], [], []
    for item in items:
        if item.curves is not None and "step" in item.curves:
            for check in reward_hacking_audit(item.curves, item.dev):
                trend_rows.append(
                    (
                        item.name,
                        check.reward,
                        fmt(check.reward_change),
                        fmt(check.accuracy_change),
                        str(check.dev_points),
                        "FLAG" if check.flagged else "",
                    )
                )
                if check.flagged:
                    flagged.append(f"{item.name}/{check.reward}")
        if item.records is not None and "completion" in item.records and "correct" in item.records:
            shape = answer_shape(item.records, item.name)
            shape_rows.append((item.name, item.split, "correct", *_shape_cells(shape.correct)))
            shape_rows.append((item.name, item.split, "wrong", *_shape_cells(shape.wrong)))
    trend_rows.sort(key=lambda row: row[-1] != "FLAG")  # flagged rewards first, otherwise in audit order
    verdict = (
        f"Flagged (reward rising while dev accuracy falls): {', '.join(flagged)}."
        if flagged
        else "No reward rose while intermediate dev accuracy fell."
    )
    section.add(
        Paragraph(
            f"Top {TOP_AUDITED} screened rewards and every finalize configuration. For each reward logged "
            "during training, the least-squares change over the run is set against the change of the "
            "intermediate dev accuracy over the same steps (a rising reward with falling accuracy is "
            "flagged). " + verdict
        ),
        Table(("configuration", "reward", "reward change", "dev acc. change", "dev points", "flag"), tuple(trend_rows)),
        Paragraph(
            "Reasoning shape of the evaluated answers, split by correct and wrong: a reward that is being "
            "gamed tends to leave wrong answers with the rewarded shape (long, many step-like lines)."
        ),
        Table(
            (
                "configuration",
                "split",
                "answers",
                "n",
                "mean chars",
                "mean tokens",
                "mean lines",
                "step lines",
                "share with steps",
            ),
            tuple(shape_rows),
        ),
    )
    if not any(i.dev for i in items):
        section.add(
            Paragraph("No intermediate dev accuracies were recorded, so no reward could be flagged.", note=True)
        )
    return section
