"""Report sections about the search rounds: per-round distribution, progress, leaderboard, curves and cost.

Every number here is on the selection split (dev unless the run selected on test, which the text then says).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from reward_search import io
from reward_search.analysis import figures
from reward_search.analysis.document import Figure, Link, Paragraph, Section, Table, fmt, fmt_ci
from reward_search.analysis.rundata import RunData, dev_points
from reward_search.analysis.signal import ranking_rule
from reward_search.candidates.records import LeaderboardEntry, rank_labels

TOP_LEADERBOARD = 20
TOP_CURVES = 4


def split_label(split: str) -> str:
    return f"{split} split" + (" (paper-fidelity mode: selection on test)" if split == "test" else "")


def source_name(entry: LeaderboardEntry) -> str:
    """The file name of a reward's source under `report/sources/`."""
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', entry.name)}-{entry.candidate_id}.py"


def write_sources(data: RunData, report_dir: Path) -> dict[str, str]:
    """Write each candidate's source under `sources/`; returns candidate id → relative link."""
    links = {}
    for entry in data.entries:
        if entry.source:
            rel = f"sources/{source_name(entry)}"
            io.write_text(report_dir / rel, entry.source if entry.source.endswith("\n") else entry.source + "\n")
            links[entry.candidate_id] = rel
    return links


def feedback_links(data: RunData, report_dir: Path) -> dict[int, str]:
    """Copy each round's saved feedback (what the proposer was told) under `feedback/`; round → relative link."""
    links = {}
    for path in sorted((data.run_dir / "feedback").glob("round-*.md")):
        number = path.stem.removeprefix("round-")
        if number.isdigit():
            rel = f"feedback/{path.name}"
            io.write_text(report_dir / rel, path.read_text(encoding="utf-8"))
            links[int(number)] = rel
    return links


def round_section(data: RunData, report_dir: Path) -> Section:
    section = Section("rounds", "Selection metric per round")
    metric = data.selection_metric
    name = "gold log-prob" if metric == "gold_logprob" else "accuracy"
    by_round: dict[int, list[float]] = defaultdict(list)
    for entry in data.ranked():
        value = getattr(entry, metric)
        if value is not None:
            by_round[entry.round].append(float(value))
    label = f"{name} ({data.selection_split})"
    figures.round_distribution(by_round, label, report_dir / "figures/rounds.png")
    links = feedback_links(data, report_dir)
    rows: list[tuple[Any, ...]] = []
    for r in sorted(by_round):
        values = np.asarray(by_round[r])
        told: Any = Link(f"round {r}", links[r]) if r in links else "—"
        digits = 4 if metric == "gold_logprob" else 3
        stats = (fmt(values.mean(), digits), fmt(float(np.median(values)), digits), fmt(values.max(), digits))
        rows.append((str(r), str(values.size), *stats, told))
    section.add(
        Paragraph(
            f"Screened candidates' {name} (the ranking's primary key) on the {split_label(data.selection_split)}, "
            "per round; the bar is the round's mean and the star its best. The feedback column links what the "
            "proposer was told before proposing that round (the ranked results of the rounds before it)."
        ),
        Figure("figures/rounds.png", f"{name} per round ({data.selection_split}): mean (bar) and best (star)"),
        Table(("round", "screened", "mean", "median", "best", "feedback"), tuple(rows)),
    )
    return section


def _hours(entry: LeaderboardEntry, use_gpu: bool) -> float:
    if use_gpu:
        return float(entry.gpu_hours or 0.0)
    return float(entry.train_seconds or 0.0) / 3600.0


def progress_section(data: RunData, report_dir: Path) -> Section:
    section = Section("progress", "Search progress")
    done = sorted(data.ranked(), key=lambda e: (e.updated, e.round, e.name))
    use_gpu = sum(e.gpu_hours or 0.0 for e in done) > 0
    best = np.maximum.accumulate([float(e.accuracy or 0.0) for e in done]) if done else np.array([])
    hours = np.cumsum([_hours(e, use_gpu) for e in done]) if done else np.array([])
    hours_label = "GPU-hours (cumulative)" if use_gpu else "training hours, CPU (cumulative)"
    figures.search_progress(
        best.tolist(),
        hours.tolist(),
        hours_label,
        f"accuracy ({data.selection_split})",
        report_dir / "figures/progress.png",
    )
    section.add(
        Paragraph(
            f"Best accuracy on the {split_label(data.selection_split)} so far, in the order screening runs "
            f"finished, against candidates screened and against {hours_label}."
            + ("" if use_gpu else " No GPU was used, so the compute axis is training wall-clock hours.")
        ),
        Figure("figures/progress.png", "Best so far against candidates screened and against compute"),
    )
    return section


def leaderboard_section(data: RunData, links: dict[str, str]) -> Section:
    section = Section("leaderboard", f"Leaderboard (top {TOP_LEADERBOARD})")
    ranked = data.ranked()
    labels = rank_labels(ranked, data.selection_metric)
    rows = []
    for rank, entry in zip(labels[:TOP_LEADERBOARD], ranked[:TOP_LEADERBOARD], strict=True):
        name: Any = Link(entry.name, links[entry.candidate_id]) if entry.candidate_id in links else entry.name
        signal = (entry.curve_summary or {}).get("signal") or {}
        rows.append(
            (
                rank,
                name,
                str(entry.round),
                entry.proposer,
                fmt(entry.accuracy),
                fmt_ci(entry.ci_low, entry.ci_high),
                fmt(entry.gold_logprob, 4),
                fmt(entry.f1),
                fmt(entry.correct),
                fmt(entry.n),
                signal.get("no_signal") or "learned",
            )
        )
    counts: dict[str, int] = defaultdict(int)
    for entry in data.entries:
        counts[entry.status] += 1
    status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no candidates"
    section.add(
        Paragraph(
            f"Ranked by {ranking_rule(data.selection_metric)} on the {split_label(data.selection_split)} "
            "(`=` marks a genuine tie); the interval is the 95% Wilson interval of the accuracy. Gold log-prob is the "
            "mean per-token log-probability of the gold worked solutions under the trained adapter (higher is better). "
            "Signal says whether the screening run could learn: a reward that gave every completion of a group the "
            f"same score, or an adapter that never moved, is marked. Each name links to the reward's source. "
            f"Candidates: {status}."
        ),
        Table(
            (
                "#",
                "reward",
                "round",
                "proposer",
                "accuracy",
                "95% CI",
                "gold log-prob",
                "F1 (paper)",
                "correct",
                "n",
                "signal",
            ),
            tuple(rows),
        ),
    )
    _skipped_table(section, data.entries)
    return section


def _skipped_table(section: Section, entries: list[LeaderboardEntry]) -> None:
    """The candidates the cascade skipped (search/cascade.py): why, and the result of the one each behaves like."""
    from reward_search.search.cascade import skipped_note

    skipped = [e for e in entries if e.status == "skipped"]
    if not skipped:
        return
    rows = tuple(
        (
            e.name,
            str(e.round),
            (e.reasons[-1] if e.reasons else "").removeprefix("skipped, not trained: "),
            skipped_note(e, entries) or "",
        )
        for e in sorted(skipped, key=lambda e: (e.round, e.name))
    )
    section.add(
        Paragraph("Not trained: the pre-screen (search.prescreen.mode) skipped these validated candidates."),
        Table(("reward", "round", "reason", "behaves like (its result)"), rows),
    )


def curve_panel(data: RunData, entry: LeaderboardEntry) -> figures.CurvePanel | None:
    """The candidate's own reward and the total reward per step, with its intermediate dev accuracies."""
    curves = data.trial_table(entry.trial_key, "curves", entry.trial_dir)
    if curves is None or "step" not in curves:
        return None
    series = {}
    for column, label in ((f"rewards/{entry.name}/mean", entry.name), ("reward", "total reward")):
        if column in curves:
            series[label] = curves[column].astype(float).tolist()
    steps = data.config.training.steps if data.config is not None else None
    points = dev_points(entry, data.report_every, steps)
    return figures.CurvePanel(
        f"{entry.name} (round {entry.round})",
        curves["step"].astype(float).tolist(),
        series,
        [p[0] for p in points],
        [p[1] for p in points],
    )


def curves_section(data: RunData, report_dir: Path) -> Section:
    section = Section("curves", f"Training curves of the top {TOP_CURVES} rewards")
    panels = [p for p in (curve_panel(data, e) for e in data.ranked()[:TOP_CURVES]) if p is not None]
    figures.training_curves(panels, report_dir / "figures/curves.png")
    section.add(
        Paragraph(
            "Per-step mean of each top reward and of the total reward during its screening run (left axis), "
            f"with the intermediate accuracy on a {data.selection_split} subset (right axis, dashed)."
        ),
        Figure("figures/curves.png", "Training curves of the top rewards"),
    )
    if not panels:
        section.add(Paragraph("No trial curves were found for the top rewards.", note=True))
    return section


def _llm_by_round(state: dict[str, Any]) -> dict[int, dict[str, float]]:
    per_round: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for record in (state.get("proposer_state") or {}).get("records", []) or []:
        row = per_round[int(record.get("round", 0))]
        for key in ("prompt_tokens", "completion_tokens", "cost_usd"):
            row[key] += float(record.get(key) or 0.0)
        row["unpriced_calls"] += record.get("cost_known") is False
    return per_round


def _dollars(cost_usd: float | None, unpriced_calls: int) -> str:
    """A dollar cell: "unknown" when some calls went to a model without a price, never a silent $0."""
    if not unpriced_calls:
        return fmt(cost_usd, 4)
    return "unknown" if not cost_usd else f"{fmt(cost_usd, 4)} + unknown"


def cost_section(data: RunData) -> Section:
    """GPU-hours, wall-clock and LLM spend per round and in total.

    Long because: one table (rounds, finalize, total) whose rows share the finalize seconds and GPUs per trial,
    built top to bottom as the report shows it.
    """
    section = Section("cost", "Cost")
    llm = _llm_by_round(data.driver_state)
    usage = data.driver_state.get("proposer_usage") or {}
    gpus = data.config.search.gpus_per_trial if data.config is not None else 0.0
    by_round: dict[int, list[LeaderboardEntry]] = defaultdict(list)
    for entry in data.entries:
        by_round[entry.round].append(entry)

    def tokens(row: dict[str, float] | None, key: str) -> str:
        return fmt(int(row[key])) if row is not None else "—"

    rows = []
    for r in sorted(by_round):
        group = by_round[r]
        row = llm.get(r)
        rows.append(
            (
                f"round {r}",
                str(len(group)),
                str(sum(e.status == "rejected" for e in group)),
                str(sum(e.status == "done" for e in group)),
                fmt(sum(e.gpu_hours or 0.0 for e in group), 4),
                fmt(sum(e.train_seconds or 0.0 for e in group) / 3600, 4),
                tokens(row, "prompt_tokens"),
                tokens(row, "completion_tokens"),
                _dollars(row["cost_usd"], int(row["unpriced_calls"])) if row is not None else "—",
            )
        )
    trained = {j.result.get("trial_key") or j.name: j for j in data.jobs}  # a seed re-run may reuse a recipe's trial
    final_seconds = sum(float(j.result.get("train_seconds") or 0.0) for j in trained.values())
    if data.finalize is not None:
        rows.append(
            (
                "finalize",
                str(len(data.jobs)),
                "—",
                str(sum(j.done for j in data.jobs)),
                fmt(final_seconds * gpus / 3600, 4),
                fmt(final_seconds / 3600, 4),
                "—",
                "—",
                "—",
            )
        )
    rows.append(
        (
            "total",
            str(len(data.entries)),
            "",
            "",
            fmt(sum(e.gpu_hours or 0.0 for e in data.entries) + final_seconds * gpus / 3600, 4),
            fmt((sum(e.train_seconds or 0.0 for e in data.entries) + final_seconds) / 3600, 4),
            fmt(usage.get("prompt_tokens")),
            fmt(usage.get("completion_tokens")),
            _dollars(usage.get("cost_usd"), int(usage.get("unpriced_calls") or 0)) if usage else "—",
        )
    )
    section.add(
        Paragraph(
            "Compute per round (training only; GPU-hours are training seconds × GPUs per trial) and proposer "
            "usage. Per-round proposer tokens and dollars come from the LLM proposer's call records; other "
            "proposers record totals only."
        ),
        Table(
            (
                "phase",
                "candidates / jobs",
                "rejected",
                "screened",
                "GPU-hours",
                "train hours",
                "prompt tokens",
                "completion tokens",
                "USD",
            ),
            tuple(rows),
        ),
    )
    transcripts = proposals_table(data)
    if transcripts is not None:
        section.add(
            Paragraph(
                "LLM proposer calls per round: how the replies parsed and how their rewards fared in validation. "
                "Each round links to its transcripts (every request and reply, secrets redacted)."
            ),
            transcripts,
        )
    return section


def proposals_table(data: RunData) -> Table | None:
    """LLM calls per round with links to `proposals/round-<r>/` (None for proposers that keep no transcripts)."""
    from reward_search.proposers.transcripts import round_counts

    records = (data.driver_state.get("proposer_state") or {}).get("records") or []
    if not records:
        return None
    rows = []
    for r, row in round_counts(records).items():
        outcomes = ", ".join(
            f"{row[k]} {k}" for k in ("ok", "malformed", "truncated", "empty", "refused", "error") if row.get(k)
        )
        folder = f"proposals/round-{r}/"
        rows.append(
            (
                f"round {r}",
                str(row["calls"]),
                outcomes,
                str(row["parsed"]),
                str(row["accepted"]),
                str(row["rejected"]),
                Link(folder, f"../{folder}"),
            )
        )
    return Table(
        ("round", "LLM calls", "replies", "rewards parsed", "accepted", "rejected", "transcripts"), tuple(rows)
    )
