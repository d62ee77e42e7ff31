"""The paper's published figures (arXiv 2605.02073, GSM8K) and the "paper versus this run" section.

The paper reports its F1 (= 2·acc/(1+acc) on GSM8K) on the test split, which it also selected on. This run selects
on dev and touches test once, in the finalize phase; each row says which split each number comes from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reward_search.analysis.document import Paragraph, Section, Table, fmt, fmt_ci
from reward_search.analysis.final_sections import FinalStats, seed_values
from reward_search.analysis.rundata import RunData
from reward_search.analysis.search_sections import split_label
from reward_search.analysis.stats import f1_from_accuracy
from reward_search.candidates.records import LeaderboardEntry


@dataclass(frozen=True)
class PaperFigures:
    """Published numbers (F1 unless named accuracy), all on GSM8K test."""

    mean_f1_first_round: float = 0.596
    mean_f1_last_round: float = 0.632
    best_single_f1: float = 0.787
    best_ensemble_f1: float = 0.795
    best_ensemble_f1_ci: tuple[float, float] = (0.756, 0.832)
    best_ensemble_accuracy: float = 0.660
    best_ensemble_accuracy_ci: tuple[float, float] = (0.635, 0.686)
    baseline_f1: float = 0.609
    three_seed_f1: float = 0.785
    random_control_f1: float = 0.047
    split: str = "test"


PAPER = PaperFigures()


def ci_consistency_note(paper: PaperFigures = PAPER) -> str:
    """The paper's F1 interval against the one its accuracy interval implies (F1 is monotone in accuracy)."""
    low, high = (f1_from_accuracy(v) for v in paper.best_ensemble_accuracy_ci)
    return (
        f"The paper's best-ensemble F1 interval [{paper.best_ensemble_f1_ci[0]:.3f}, "
        f"{paper.best_ensemble_f1_ci[1]:.3f}] is wider than its accuracy interval permits: F1 = 2·acc/(1+acc) is "
        f"increasing in accuracy, so accuracy in [{paper.best_ensemble_accuracy_ci[0]:.3f}, "
        f"{paper.best_ensemble_accuracy_ci[1]:.3f}] maps to F1 in [{low:.3f}, {high:.3f}]."
    )


FAILED_AT_ZERO = ("failed", "crashed", "stopped")


def round_f1s(entries: list[LeaderboardEntry]) -> dict[int, list[float]]:
    """Each round's trial F1s the way the paper averaged them: screened trials with their F1, and trials that
    failed, crashed or were stopped at F1 = 0 (rejected candidates never trained and are not counted)."""
    by_round: dict[int, list[float]] = {}
    for entry in entries:
        if entry.status == "done" and entry.f1 is not None:
            by_round.setdefault(entry.round, []).append(float(entry.f1))
        elif entry.status in FAILED_AT_ZERO:
            by_round.setdefault(entry.round, []).append(0.0)
    return by_round


def _round_mean_f1(data: RunData) -> tuple[int, float, int, float] | None:
    by_round = round_f1s(data.entries)
    if not by_round:
        return None
    first, last = min(by_round), max(by_round)
    return first, float(np.mean(by_round[first])), last, float(np.mean(by_round[last]))


def _too_small(data: RunData) -> list[Paragraph]:
    """A plain warning when every screened candidate scored the same accuracy: the run could not move it."""
    scores = {e.accuracy for e in data.entries if e.status == "done" and e.accuracy is not None}
    if len(scores) != 1:
        return []
    steps = data.config.training.steps if data.config is not None else None
    return [
        Paragraph(
            f"This run is too small for accuracy to move: every screened candidate scored {fmt(next(iter(scores)))} "
            f"on the {split_label(data.selection_split)}"
            + (f" after {steps} training steps" if steps else "")
            + ". Its accuracy figures below say nothing about the rewards; the ranking and the graded-signal section "
            "use the gold solutions' log-probability instead. The paper trained for hours on a GPU.",
            warning=True,
        )
    ]


def paper_section(data: RunData, stats: FinalStats, paper: PaperFigures = PAPER) -> Section:
    """The paper's headline figures beside this run's, one table row per figure.

    Long because: each row is one figure of the paper next to ours; a row list reads best in one place.
    """
    section = Section("paper", "Paper versus this run")
    sel = data.selection_split
    rows = []
    rounds = _round_mean_f1(data)
    ours = "—" if rounds is None else f"{fmt(rounds[1])} → {fmt(rounds[3])} (rounds {rounds[0]} → {rounds[2]})"
    rows.append(
        (
            "mean F1 of trials (failed at 0), first → last round",
            f"{paper.mean_f1_first_round:.3f} → {paper.mean_f1_last_round:.3f} (rounds 1 → 5)",
            paper.split,
            ours,
            sel,
        )
    )
    best = data.ranked()[0] if data.ranked() else None
    rows.append(
        (
            "best single reward, F1",
            f"{paper.best_single_f1:.3f}",
            paper.split,
            "—" if best is None else f"{fmt(best.f1)} ({best.name})",
            sel,
        )
    )
    summary, best_recipe = stats.summary, (data.finalize or {}).get("best_recipe")
    metric = summary.metric(best_recipe) if summary is not None and best_recipe in summary.names else None
    rows.append(
        (
            "best ensemble, F1 [95% CI]",
            f"{paper.best_ensemble_f1:.3f} {fmt_ci(*paper.best_ensemble_f1_ci)}",
            paper.split,
            "—"
            if metric is None
            else f"{fmt(metric.f1.estimate)} {fmt_ci(metric.f1.percentile.low, metric.f1.percentile.high)} "
            f"({best_recipe})",
            "test",
        )
    )
    rows.append(
        (
            "best ensemble, accuracy [95% CI]",
            f"{paper.best_ensemble_accuracy:.3f} {fmt_ci(*paper.best_ensemble_accuracy_ci)}",
            paper.split,
            "—"
            if metric is None
            else f"{fmt(metric.accuracy.estimate)} "
            f"{fmt_ci(metric.accuracy.percentile.low, metric.accuracy.percentile.high)}",
            "test",
        )
    )
    for label, value, name in (
        ("baseline (base rewards only), F1", paper.baseline_f1, "baseline"),
        ("random-reward control, F1", paper.random_control_f1, "random"),
    ):
        ours = summary.metric(name).f1.estimate if summary is not None and name in summary.names else None
        rows.append((label, f"{value:.3f}", paper.split, fmt(ours), "test"))
    _, seeds = seed_values(data)
    seed_f1 = seeds.get("test F1 (paper)")
    rows.append(
        (
            "best ensemble over seeds, mean F1",
            f"{paper.three_seed_f1:.3f} (3 seeds)",
            paper.split,
            "—" if seed_f1 is None else f"{fmt(seed_f1.mean)} ({seed_f1.n} seeds)",
            "test",
        )
    )
    section.add(
        Paragraph(
            "The paper's numbers are on GSM8K test, where it also selected its rewards and ensembles. Here the "
            f"search and the choice of the best recipe use the {split_label(sel)}; the finalize numbers "
            "are this run's single evaluation on test. This run's data, model and budget may differ from the "
            "paper's (see the run summary), so compare shapes, not decimals."
        ),
        *_too_small(data),
        Table(("quantity", "paper", "paper split", "this run", "this run split"), tuple(rows)),
        Paragraph(ci_consistency_note(paper), note=True),
    )
    return section
