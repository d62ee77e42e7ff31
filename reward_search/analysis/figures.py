"""The report's PNG figures, drawn with matplotlib's object API (no pyplot, so no global backend state).

Each function takes plain numbers, draws one figure and saves it atomically (a temporary name in the same folder,
then a rename), so a reader never sees half a PNG.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

DPI = 110


@dataclass(frozen=True)
class ForestRow:
    """One configuration in the forest plot: estimate with its interval; `kind` picks the colour."""

    name: str
    kind: str
    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class CurvePanel:
    """One trial's training curves: reward series per step, and dev accuracy points on a second axis."""

    title: str
    steps: Sequence[float]
    series: Mapping[str, Sequence[float]]
    dev_steps: Sequence[float] = field(default_factory=tuple)
    dev_values: Sequence[float] = field(default_factory=tuple)


_KIND_COLOURS = {"baseline": "#7f7f7f", "random": "#d62728", "seed": "#9467bd", "untrained": "#8c564b"}


def save(fig: Figure, path: Path) -> Path:
    """Save `fig` as PNG at `path` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def _accuracy_limits(values: Sequence[float]) -> tuple[float, float]:
    """Axis limits for accuracies: from 0 to a little above the largest value (at least 0.1, at most 1)."""
    finite = [v for v in values if np.isfinite(v)]
    top = max(finite, default=0.0)
    return -0.02, min(1.02, max(0.1, top + 0.05))


def _empty_note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#555555")


def round_distribution(values: Mapping[int, Sequence[float]], label: str, path: Path) -> Path:
    """Each round's candidates as points, with the round's mean (bar) and best (star) marked."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    rounds = sorted(values)
    rng = np.random.default_rng(0)
    for i, r in enumerate(rounds):
        data = np.asarray(values[r], dtype=float)
        if data.size == 0:
            continue
        ax.scatter(i + rng.uniform(-0.15, 0.15, data.size), data, s=18, alpha=0.6, color="#1f77b4")
        ax.hlines(data.mean(), i - 0.3, i + 0.3, color="black", lw=2, label="mean" if i == 0 else None)
        ax.scatter([i], [data.max()], marker="*", s=160, color="#ff7f0e", zorder=3, label="best" if i == 0 else None)
    ax.set_xticks(range(len(rounds)), [f"round {r}" for r in rounds])
    ax.set_ylabel(label)
    ax.set_ylim(*_accuracy_limits([v for r in rounds for v in values[r]]))
    ax.set_title("Selection metric per round")
    if rounds:
        ax.legend(loc="best")
    else:
        _empty_note(ax, "no screened candidates")
    return save(fig, path)


def search_progress(
    best_so_far: Sequence[float], hours: Sequence[float], hours_label: str, label: str, path: Path
) -> Path:
    """Best selection metric so far against candidates screened and against cumulative compute hours."""
    fig = Figure(figsize=(10, 4))
    left, right = fig.subplots(1, 2)
    count = np.arange(1, len(best_so_far) + 1)
    left.step(count, best_so_far, where="post", color="#2ca02c")
    left.set_xlabel("candidates screened")
    right.step(hours, best_so_far, where="post", color="#2ca02c")
    right.set_xlabel(hours_label)
    for ax in (left, right):
        ax.set_ylabel(f"best {label} so far")
        ax.set_ylim(*_accuracy_limits(best_so_far))
        if not len(best_so_far):
            _empty_note(ax, "no screened candidates")
    fig.suptitle("Search progress")
    return save(fig, path)


def forest_plot(rows: Sequence[ForestRow], label: str, path: Path) -> Path:
    """Estimates with confidence intervals, one row per configuration, top to bottom in the given order."""
    fig = Figure(figsize=(7, 1.2 + 0.45 * max(len(rows), 1)))
    ax = fig.add_subplot()
    for i, row in enumerate(rows):
        y = len(rows) - 1 - i
        colour = _KIND_COLOURS.get(row.kind, "#1f77b4")
        ax.errorbar(
            row.estimate,
            y,
            xerr=[[row.estimate - row.low], [row.high - row.estimate]],
            fmt="o",
            color=colour,
            capsize=4,
        )
    for row in rows:  # the two controls every configuration is read against
        if row.kind in ("baseline", "untrained"):
            style = "--" if row.kind == "baseline" else ":"
            ax.axvline(row.estimate, color=_KIND_COLOURS[row.kind], ls=style, lw=1, label=row.kind)
    ax.set_yticks(range(len(rows)), [f"{r.name} ({r.kind})" for r in reversed(rows)])
    ax.set_xlabel(label)
    ax.set_xlim(*_accuracy_limits([r.high for r in rows]))
    ax.set_ylim(-0.7, max(len(rows), 1) - 0.3)
    ax.grid(axis="x", alpha=0.3)
    if not rows:
        _empty_note(ax, "no evaluated configurations")
    return save(fig, path)


@dataclass(frozen=True)
class ModeBar:
    """One configuration's accuracy under one extraction mode, with its interval."""

    name: str
    mode: str
    estimate: float
    low: float
    high: float


def mode_bars(bars: Sequence[ModeBar], label: str, path: Path) -> Path:
    """Grouped bars: each configuration's accuracy per extraction mode (strict, flexible) with CI whiskers."""
    names = list(dict.fromkeys(b.name for b in bars))
    modes = list(dict.fromkeys(b.mode for b in bars))
    fig = Figure(figsize=(2.5 + 1.3 * max(len(names), 1), 3.8))
    ax = fig.add_subplot()
    width = 0.8 / max(len(modes), 1)
    for m, mode in enumerate(modes):
        chosen = [next((b for b in bars if b.name == n and b.mode == mode), None) for n in names]
        xs = [i + (m - (len(modes) - 1) / 2) * width for i, b in enumerate(chosen) if b is not None]
        shown = [b for b in chosen if b is not None]
        ax.bar(
            xs,
            [b.estimate for b in shown],
            width,
            yerr=[[b.estimate - b.low for b in shown], [b.high - b.estimate for b in shown]],
            capsize=4,
            label=mode,
            alpha=0.85,
        )
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel(label)
    ax.set_ylim(*_accuracy_limits([b.high for b in bars]))
    ax.grid(axis="y", alpha=0.3)
    if bars:
        ax.legend(title="extraction", fontsize=8)
    else:
        _empty_note(ax, "no evaluated configurations")
    return save(fig, path)


def pvalue_heatmap(
    names: Sequence[str], raw: np.ndarray, holm: np.ndarray, bonferroni: np.ndarray, alpha: float, path: Path
) -> Path:
    """Raw McNemar p-values; cells marked H / B where Holm / Bonferroni reject at `alpha`."""
    k = len(names)
    fig = Figure(figsize=(2.5 + 0.8 * k, 1.8 + 0.7 * k))
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(raw), vmin=0.0, vmax=1.0, cmap="viridis_r")
    fig.colorbar(image, ax=ax, label="raw p-value")
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    for i in range(k):
        for j in range(k):
            if i == j or not np.isfinite(raw[i, j]):
                continue
            marks = ("H" if holm[i, j] <= alpha else "") + ("B" if bonferroni[i, j] <= alpha else "")
            text = f"{raw[i, j]:.2g}" + (f"\n{marks}" if marks else "")
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="black" if raw[i, j] < 0.5 else "white")
    ax.set_title(f"McNemar p-values (H/B: rejected after Holm/Bonferroni at α={alpha})", fontsize=9)
    return save(fig, path)


def training_curves(panels: Sequence[CurvePanel], path: Path) -> Path:
    """Small multiples: reward means per step (left axis) and intermediate dev accuracy (right axis)."""
    cols = min(2, max(len(panels), 1))
    nrows = max(1, -(-len(panels) // cols))
    fig = Figure(figsize=(6 * cols, 3.4 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, cols, squeeze=False)).ravel()
    for ax, panel in zip(axes, panels, strict=False):
        for name, values in panel.series.items():
            ax.plot(panel.steps, values, label=name, lw=1.4)
        ax.set_title(panel.title, fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("reward (mean)")
        if panel.dev_values:
            twin = ax.twinx()
            twin.plot(panel.dev_steps, panel.dev_values, "k--o", ms=3, label="dev accuracy")
            twin.set_ylabel("dev accuracy")
            twin.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7, loc="upper left")
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    if not panels:
        _empty_note(axes[0], "no training curves")
    fig.tight_layout()
    return save(fig, path)
