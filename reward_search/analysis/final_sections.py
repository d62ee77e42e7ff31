"""Report sections about the finalize phase: ensemble CIs (forest plot), pairwise McNemar, seed statistics.

All numbers are on the test split (each finalize job is evaluated on it once, at the end) unless a column says
`dev`. Statistics are recomputed from the saved per-question test records, never from re-generation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reward_search.analysis import figures
from reward_search.analysis.bootstrap import (
    BootstrapCI,
    MetricCIs,
    PairedDifference,
    bootstrap_metrics,
    paired_difference,
)
from reward_search.analysis.document import Figure as FigureBlock
from reward_search.analysis.document import Paragraph, Section, Table, fmt, fmt_ci
from reward_search.analysis.mcnemar import McNemarResult, mcnemar_test
from reward_search.analysis.rundata import FinalJobView, RunData
from reward_search.analysis.stats import ConfigurationSummary, SeedStats, seed_statistics, summarize_configurations
from reward_search.analysis.vectors import align_by_ids

KIND_ORDER = {"top_k": 0, "diverse": 0, "correctness": 0, "baseline": 1, "untrained": 2, "random": 3, "seed": 4}
MODES = ("strict", "flexible")  # the extraction modes every evaluation records (`correct_<mode>` columns)


@dataclass
class FinalStats:
    """The finalize configurations compared on test (seed re-runs excluded) and their statistics."""

    jobs: list[FinalJobView]
    records: dict[str, pd.DataFrame]
    summary: ConfigurationSummary | None
    notes: list[str] = field(default_factory=list)


ENSEMBLE_KINDS = ("top_k", "diverse", "correctness")
FAMILY_LABELS = {
    "paper": "the ensemble recipes only (analysis.mcnemar: paper, the reference's family), continuity-corrected "
    "chi-square for every pair, Bonferroni",
    "exact": "every configuration: recipes, baseline and random control (analysis.mcnemar: exact), exact binomial "
    "below {threshold} discordant pairs, Holm",
}


def mcnemar_family(jobs: list[FinalJobView], mode: str) -> tuple[list[str], list[str]]:
    """The configurations McNemar compares under `mode`, and notes on the ones left out (duplicates, non-recipes).

    A job reported under several labels (`same_job_as`) is tested once, under the label that ran.
    """
    family, notes = [], []
    for job in jobs:
        twin = job.result.get("same_job_as")
        if twin:
            notes.append(
                f"{job.name} is the same job as {twin} (one training, reported under both labels): tested once"
            )
        elif mode == "paper" and job.kind not in ENSEMBLE_KINDS:
            continue
        else:
            family.append(job.name)
    return family, notes


def final_stats(data: RunData, n_resamples: int, seed: int) -> FinalStats:
    """Bootstrap CIs and McNemar over the done recipes, the baseline and the random control, on test records.

    Records are paired by question id; configurations that cover different questions get no paired statistics.
    """
    notes: list[str] = []
    jobs, frames = [], {}
    for job in data.jobs:
        if job.kind == "seed":
            continue
        if not job.done:
            notes.append(f"{job.name}: {job.result.get('status', 'not run')} {job.result.get('error') or ''}".strip())
            continue
        frame = data.job_records(job, "test")
        if frame is None:
            notes.append(f"{job.name}: no test records (trials/{job.result.get('trial_key')}/test.parquet)")
            continue
        jobs.append(job)
        frames[job.name] = frame
    if not frames:
        return FinalStats(jobs, frames, None, notes)
    try:
        records = align_by_ids(frames)
    except ValueError as exc:
        notes.append(f"no paired statistics: {exc}")
        return FinalStats(jobs, frames, None, notes)
    mode = data.mcnemar_mode
    family, family_notes = mcnemar_family(jobs, mode)
    notes += family_notes
    best = (data.finalize or {}).get("best_recipe")
    analysis = data.config.analysis if data.config is not None else None
    summary = summarize_configurations(
        {n: f["correct"].to_numpy(dtype=bool) for n, f in records.items()},
        {n: f["extracted"].notna().to_numpy() for n, f in records.items()}
        if all("extracted" in f for f in records.values())
        else None,
        reference=best if best in records else None,
        n_resamples=n_resamples,
        seed=seed,
        family=family or list(records)[:1],
        mcnemar=mode,
        alpha=analysis.alpha if analysis is not None else 0.05,
        exact_threshold=analysis.exact_threshold if analysis is not None else 25,
    )
    return FinalStats(jobs, records, summary, notes)


def ensembles_section(data: RunData, stats: FinalStats, report_dir: Path) -> Section:
    """The finalize jobs on test: a forest plot and one table row per configuration, with CIs and paired Δ.

    Long because: one table of eleven columns is built and described top to bottom, as the reader sees it.
    """
    section = Section("ensembles", "Ensembles, baseline and random control (test)")
    if stats.summary is None:
        section.add(Paragraph("No finalize job has test records yet, so there are no ensemble statistics.", note=True))
        section.add(*(Paragraph(n, note=True) for n in stats.notes))
        return section
    summary = stats.summary
    order = sorted(stats.jobs, key=lambda j: (KIND_ORDER.get(j.kind, 0), -summary.metric(j.name).accuracy.estimate))
    rows, forest = [], []
    differences = {d.first: d for d in summary.differences}
    for job in order:
        m = summary.metric(job.name)
        acc, f1 = m.accuracy, m.f1
        forest.append(figures.ForestRow(job.name, job.kind, acc.estimate, acc.percentile.low, acc.percentile.high))
        diff = differences.get(job.name)
        delta = (
            "reference"
            if diff is None
            else (
                f"{diff.accuracy.estimate:+.3f} {fmt_ci(diff.accuracy.percentile.low, diff.accuracy.percentile.high)}"
            )
        )
        rows.append(
            (
                job.name,
                job.kind,
                ", ".join(job.members) or ("no training" if job.kind == "untrained" else "base rewards only"),
                fmt(job.result.get("selection_accuracy")),
                fmt(acc.estimate),
                fmt_ci(acc.percentile.low, acc.percentile.high),
                fmt_ci(acc.bca.low, acc.bca.high),
                fmt(f1.estimate),
                fmt_ci(f1.percentile.low, f1.percentile.high),
                delta,
                str(m.n),
            )
        )
    figures.forest_plot(forest, "test accuracy (95% percentile bootstrap CI)", report_dir / "figures/forest.png")
    level = round(summary.confidence_level * 100)
    section.add(
        Paragraph(
            f"Every finalize configuration evaluated once on the test split ({summary.n} questions). "
            f"Intervals: {level}% bootstrap over questions ({summary.n_resamples} resamples, seed "
            f"{summary.seed}), percentile and BCa. Δ is the paired difference in accuracy against the "
            f"reference {summary.reference!r}. The dev column is what ranked the recipes."
        ),
        FigureBlock(
            "figures/forest.png",
            "Test accuracy with 95% CIs: recipes, baseline (grey), untrained model (brown), random control (red)",
        ),
        Table(
            (
                "configuration",
                "kind",
                "members",
                "dev acc.",
                "test acc.",
                "95% CI",
                "BCa CI",
                "test F1 (paper)",
                "F1 95% CI",
                "Δ acc. vs reference [CI]",
                "n",
            ),
            tuple(rows),
        ),
    )
    section.add(*(Paragraph(n, note=True) for n in stats.notes))
    return section


def mcnemar_section(stats: FinalStats, report_dir: Path) -> Section:
    """Pairwise McNemar tests of the finalize configurations on test: a p-value heatmap and the table.

    Long because: the section is written top to bottom as the reader sees it (guards, figure, table, notes).
    """
    section = Section("mcnemar", "Pairwise McNemar tests (test)")
    if stats.summary is None or len(stats.summary.names) < 2:
        section.add(Paragraph("Fewer than two configurations with test records: no pairwise tests.", note=True))
        return section
    table = stats.summary.mcnemar
    names = list(dict.fromkeys(name for row in table.comparisons for name in (row.test.first, row.test.second)))
    if len(names) < 2:
        section.add(Paragraph("Fewer than two configurations in the McNemar family: no pairwise tests.", note=True))
        return section
    figures.pvalue_heatmap(
        names,
        table.p_matrix(names, "raw"),
        table.p_matrix(names, "holm"),
        table.p_matrix(names, "bonferroni"),
        table.alpha,
        report_dir / "figures/mcnemar.png",
    )
    rows = []
    for row in table.comparisons:
        t = row.test
        rows.append(
            (
                t.first,
                t.second,
                str(t.b),
                str(t.c),
                t.method,
                fmt(t.p_value, 4),
                fmt(row.p_holm, 4),
                "yes" if row.reject_holm else "no",
                fmt(row.p_bonferroni, 4),
                "yes" if row.reject_bonferroni else "no",
            )
        )
    m = len(table.comparisons)
    family = FAMILY_LABELS[table.mode].format(threshold=table.exact_threshold)
    section.add(
        Paragraph(
            f"McNemar's test on per-question test correctness, paired by question id, for each of the {m} pairs of "
            f"{len(names)} configurations. Family: {family}; the primary correction is {table.correction.title()}, "
            f"and both Holm and Bonferroni are shown at α = {table.alpha} (Bonferroni threshold "
            f"α/m = {table.alpha / max(m, 1):.4g}). b: only the first right; c: only the second right."
        ),
        FigureBlock("figures/mcnemar.png", "Raw McNemar p-values; H/B mark pairs rejected after Holm/Bonferroni"),
        Table(
            (
                "first",
                "second",
                "b",
                "c",
                "test",
                "p",
                "p Holm",
                "reject (Holm)",
                "p Bonferroni",
                "reject (Bonferroni)",
            ),
            tuple(rows),
        ),
    )
    return section


def seed_values(data: RunData) -> tuple[list[FinalJobView], dict[str, SeedStats]]:
    """The done seed re-runs of the best recipe and the spread of their metrics."""
    seeds = [j for j in data.jobs if j.kind == "seed" and j.done]
    stats = {}
    for label, key in (
        ("test accuracy", "test_accuracy"),
        ("test F1 (paper)", "test_f1"),
        ("dev accuracy", "selection_accuracy"),
    ):
        values = [float(j.result[key]) for j in seeds if j.result.get(key) is not None]
        if values:
            stats[label] = seed_statistics(values)
    return seeds, stats


def seeds_section(data: RunData) -> Section:
    section = Section("seeds", "Seed statistics of the best recipe")
    seeds, stats = seed_values(data)
    if not seeds:
        section.add(Paragraph("No finished seed re-runs (finalize has not run, or no recipe finished).", note=True))
        return section
    best = (data.finalize or {}).get("best_recipe")
    per_seed = tuple(
        (
            j.name,
            fmt(j.seed),
            fmt(j.result.get("selection_accuracy")),
            fmt(j.result.get("test_accuracy")),
            fmt(j.result.get("test_f1")),
        )
        for j in seeds
    )
    summary = tuple(
        (label, str(s.n), fmt(s.mean), fmt(s.std), fmt(s.min), fmt(s.max), fmt(s.range)) for label, s in stats.items()
    )
    section.add(
        Paragraph(
            f"The best recipe on {data.selection_split} ({best}) re-trained with {len(seeds)} seeds; standard "
            "deviation with ddof = 1 (— for a single seed)."
        ),
        Table(("metric", "seeds", "mean", "std", "min", "max", "range"), summary),
        Table(("job", "seed", "dev acc.", "test acc.", "test F1 (paper)"), per_seed),
    )
    return section


# ------------------------------------------------------------------------------------- the two controls, by mode


@dataclass(frozen=True)
class ControlComparison:
    """`first` against `second` on the same test questions under one extraction mode: both accuracies with
    bootstrap CIs, the paired difference and McNemar."""

    mode: str
    first: MetricCIs
    second: MetricCIs
    difference: PairedDifference
    mcnemar: McNemarResult


def control_frames(data: RunData) -> dict[str, pd.DataFrame]:
    """Test records of the best recipe, the baseline and the untrained model (those present), paired by question."""
    best = (data.finalize or {}).get("best_recipe")
    frames = {}
    for job in data.jobs:
        if job.done and (job.name == best or job.kind in ("baseline", "untrained")) and job.name not in frames:
            frame = data.job_records(job, "test")
            if frame is not None:
                frames[job.name] = frame
    try:
        return align_by_ids(frames)
    except ValueError:  # different questions: nothing to pair
        return {}


def _mode_vectors(frame: pd.DataFrame, mode: str) -> tuple[np.ndarray, np.ndarray] | None:
    column = mode.replace("-", "_")
    if f"correct_{column}" not in frame or f"extracted_{column}" not in frame:
        return None
    return frame[f"correct_{column}"].to_numpy(dtype=bool), frame[f"extracted_{column}"].notna().to_numpy()


def control_comparisons(
    frames: dict[str, pd.DataFrame], pairs: list[tuple[str, str]], n_resamples: int, seed: int, exact_threshold: int
) -> list[ControlComparison]:
    """Each pair present in `frames`, under each mode: bootstrap CIs, the paired difference and McNemar."""
    out = []
    for first, second in pairs:
        if first not in frames or second not in frames or first == second:
            continue
        for mode in MODES:
            a, b = _mode_vectors(frames[first], mode), _mode_vectors(frames[second], mode)
            if a is None or b is None:
                continue
            options = {"n_resamples": n_resamples, "seed": seed}
            out.append(
                ControlComparison(
                    mode,
                    bootstrap_metrics(a[0], a[1], name=first, **options),
                    bootstrap_metrics(b[0], b[1], name=second, **options),
                    paired_difference(a[0], b[0], a[1], b[1], names=(first, second), **options),
                    mcnemar_test(a[0], b[0], names=(first, second), exact_threshold=exact_threshold),
                )
            )
    return out


def control_pairs(data: RunData) -> list[tuple[str, str]]:
    """Best recipe against the baseline and against the untrained model; the baseline against the untrained."""
    best = (data.finalize or {}).get("best_recipe") or ""
    untrained = data.untrained.name if data.untrained is not None else "untrained"
    return [(best, "baseline"), (best, untrained), ("baseline", untrained)]


def _exact_threshold(data: RunData) -> int:
    return data.config.analysis.exact_threshold if data.config is not None else 25


def controls_section(data: RunData, report_dir: Path, n_resamples: int, seed: int) -> Section:
    """The best recipe against the baseline and the untrained model on test, strict and flexible: a bar chart of
    the three with CIs, and each pair's paired difference and McNemar test."""
    section = Section("controls", "Against the baseline and the untrained model (test)")
    frames = control_frames(data)
    comparisons = control_comparisons(frames, control_pairs(data), n_resamples, seed, _exact_threshold(data))
    if not comparisons:
        note = "No paired test records of the best recipe, the baseline and the untrained model"
        if data.untrained is None:
            note += " (this finalize has no untrained row: `finalize.untrained: false`, or an older run)"
        return section.add(Paragraph(note + ".", note=True))
    bars, seen = [], set()
    for c in comparisons:
        for m in (c.first, c.second):
            if (m.name, c.mode) not in seen:
                seen.add((m.name, c.mode))
                bars.append(figures.ModeBar(m.name, c.mode, m.accuracy.estimate, *_interval(m.accuracy)))
    figures.mode_bars(bars, "test accuracy (95% percentile bootstrap CI)", report_dir / "figures/controls.png")
    rows = tuple(
        (
            c.first.name,
            c.second.name,
            c.mode,
            f"{fmt(c.first.accuracy.estimate)} {fmt_ci(*_interval(c.first.accuracy))}",
            f"{fmt(c.second.accuracy.estimate)} {fmt_ci(*_interval(c.second.accuracy))}",
            f"{c.difference.accuracy.estimate:+.3f} {fmt_ci(*_interval(c.difference.accuracy))}",
            str(c.mcnemar.b),
            str(c.mcnemar.c),
            f"{fmt(c.mcnemar.p_value, 4)} ({c.mcnemar.method})",
            str(c.difference.n),
        )
        for c in comparisons
    )
    section.add(
        Paragraph(
            "Did training help at all, and did the found rewards help beyond the base rewards? The best recipe on "
            f"{data.selection_split}, the base-rewards baseline and the untrained model (the base model without "
            "training, same evaluation) on the same test questions, under strict extraction (the task's grader) and "
            "flexible extraction (the last number). Intervals: 95% bootstrap over questions; Δ is paired; McNemar "
            "per pair, uncorrected (b: only the first right, c: only the second)."
        ),
        FigureBlock("figures/controls.png", "Test accuracy by extraction mode: best recipe, baseline, untrained"),
        Table(("first", "second", "mode", "first acc. [CI]", "second acc. [CI]", "Δ [CI]", "b", "c", "p", "n"), rows),
    )
    return section


def _interval(ci: BootstrapCI) -> tuple[float, float]:
    return ci.percentile.low, ci.percentile.high


def untrained_summary_line(data: RunData, n_resamples: int = 10_000, seed: int = 0) -> str:
    """The demo's summary line: the untrained model on test (strict and flexible, with CIs), and the best recipe's
    and the baseline's strict accuracy against it (paired CIs)."""
    untrained = data.untrained
    if untrained is None or not untrained.done:
        status = "not evaluated" if untrained is None else str(untrained.result.get("status"))
        return f"untrained model: {status}"
    best = (data.finalize or {}).get("best_recipe")
    pairs = [(name, untrained.name) for name in dict.fromkeys((best or "", "baseline"))]
    comparisons = control_comparisons(control_frames(data), pairs, n_resamples, seed, _exact_threshold(data))
    if not comparisons:
        return f"untrained model: no test records ({untrained.result.get('trial_dir')})"
    by_mode = {c.mode: c.second for c in comparisons}
    parts = [f"{mode} {fmt(m.accuracy.estimate)} {fmt_ci(*_interval(m.accuracy))}" for mode, m in by_mode.items()]
    against = [
        f"{'best recipe ' if c.first.name == best else ''}{c.first.name} {fmt(c.first.accuracy.estimate)} "
        f"({c.difference.accuracy.estimate:+.3f} {fmt_ci(*_interval(c.difference.accuracy))})"
        for c in comparisons
        if c.mode == "strict"
    ]
    n = next(iter(by_mode.values())).n
    return (
        f"untrained model: test accuracy {', '.join(parts)} over {n} questions; against it (strict, paired 95% CI): "
        + ", ".join(against)
    )


def best_vs_baseline_summary_line(data: RunData, n_resamples: int = 10_000, seed: int = 0) -> str | None:
    """The best recipe's strict test accuracy against the baseline's on the same questions (paired 95% CI and
    McNemar), or None when finalize has no such pair (no baseline, or not run)."""
    best = (data.finalize or {}).get("best_recipe")
    if not best:
        return None
    pairs = [(best, "baseline")]
    comparisons = control_comparisons(control_frames(data), pairs, n_resamples, seed, _exact_threshold(data))
    strict = next((c for c in comparisons if c.mode == "strict"), None)
    if strict is None:
        return None
    return (
        f"best recipe {best}: test accuracy {fmt(strict.first.accuracy.estimate)} "
        f"{fmt_ci(*_interval(strict.first.accuracy))} vs baseline {fmt(strict.second.accuracy.estimate)}: "
        f"{strict.difference.accuracy.estimate:+.3f} {fmt_ci(*_interval(strict.difference.accuracy))} "
        f"(paired 95% CI; McNemar p {strict.mcnemar.p_value:.3g}) over {strict.first.n} questions, strict"
    )
