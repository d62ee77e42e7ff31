"""Audits of evaluated configurations from their saved records: format versus reasoning errors, reward hacking.

Everything here reads what a trial already wrote (per-question records as Parquet, the per-step curve table, the
intermediate dev accuracies), so the audit never re-generates. Records follow
`reward_search.training.evaluation.grade_records`: `completion`, `completion_tokens`, `correct`,
`correct_strict`, `correct_flexible`, ...; curves follow `reward_search.training.curves` (`step`,
`rewards/<name>/mean`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

RECORD_FILES = ("records.parquet", "selection.parquet", "test.parquet")
# A step-like line starts with a number or a bullet, or contains an equation.
_STEP_LINE = re.compile(r"^(?=[ \t]*(?:\d|[-*•+][ \t])|[^\n]*=)", re.MULTILINE)
_REWARD_COLUMN = re.compile(r"^rewards/(.+)/mean$")

Records = pd.DataFrame | Sequence[Mapping[str, Any]] | str | Path


@dataclass(frozen=True)
class FormatGap:
    """Strict versus flexible accuracy: the questions lost to answer format rather than to reasoning."""

    name: str
    n: int
    strict_correct: int
    flexible_correct: int
    strict_accuracy: float
    flexible_accuracy: float
    gap: float  # flexible − strict accuracy
    format_errors: int  # wrong under strict extraction, right under flexible
    format_share_of_errors: float  # format_errors / strict errors

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrendCheck:
    """One reward's trend against dev accuracy over training; `flagged` = reward rising while accuracy falls."""

    reward: str
    curve_points: int
    dev_points: int
    reward_slope: float | None  # per step, least squares
    accuracy_slope: float | None  # per step, least squares
    reward_change: float | None  # slope × the curve's step span
    accuracy_change: float | None  # slope × the same span
    flagged: bool

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ShapeStats:
    """Shape of a group of completions: length in characters and tokens, lines, step-like lines."""

    n: int
    mean_chars: float | None
    median_chars: float | None
    mean_tokens: float | None
    mean_lines: float | None
    mean_step_lines: float | None
    share_with_steps: float | None  # completions with at least one step-like line


@dataclass(frozen=True)
class AnswerShape:
    """Reasoning-shape statistics of one configuration's evaluated answers, split by correct and wrong."""

    name: str
    correct: ShapeStats
    wrong: ShapeStats

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_records(source: Records) -> pd.DataFrame:
    """Per-question records as a DataFrame: a DataFrame, dicts, a Parquet file, or a folder holding one records file."""
    if isinstance(source, pd.DataFrame):
        return source
    if isinstance(source, str | Path):
        path = Path(source)
        if path.is_dir():
            found = [path / name for name in RECORD_FILES if (path / name).is_file()]
            if len(found) != 1:
                held = ", ".join(f.name for f in found) or "none"
                raise ValueError(f"{path}: expected exactly one of {', '.join(RECORD_FILES)}, found {held}")
            path = found[0]
        return pd.read_parquet(path)
    return pd.DataFrame(list(source))


def format_gap(records: Records, name: str = "") -> FormatGap:
    """Strict and flexible accuracy of one configuration from its saved records (no re-generation)."""
    frame = load_records(records)
    for column in ("correct_strict", "correct_flexible"):
        if column not in frame:
            raise ValueError(f"records of {name or 'this configuration'} have no {column!r} column")
    strict = frame["correct_strict"].to_numpy(dtype=bool)
    flexible = frame["correct_flexible"].to_numpy(dtype=bool)
    n = strict.size
    format_errors = int(np.count_nonzero(flexible & ~strict))
    strict_errors = n - int(strict.sum())
    return FormatGap(
        name=name,
        n=n,
        strict_correct=int(strict.sum()),
        flexible_correct=int(flexible.sum()),
        strict_accuracy=float(strict.mean()) if n else 0.0,
        flexible_accuracy=float(flexible.mean()) if n else 0.0,
        gap=float(flexible.mean() - strict.mean()) if n else 0.0,
        format_errors=format_errors,
        format_share_of_errors=format_errors / strict_errors if strict_errors else 0.0,
    )


def format_gaps(sources: Mapping[str, Records]) -> tuple[FormatGap, ...]:
    """`format_gap` for each configuration, in the mapping's order."""
    return tuple(format_gap(records, name) for name, records in sources.items())


def least_squares_slope(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float | None:
    """Ordinary least-squares slope of y on x; None with fewer than two distinct x values."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    if xs.size < 2 or np.ptp(xs) == 0:
        return None
    dx = xs - xs.mean()
    return float(dx @ (ys - ys.mean()) / (dx @ dx))


def reward_hacking_audit(
    curve: pd.DataFrame | Sequence[Mapping[str, Any]],
    dev_accuracy: Mapping[int, float] | Sequence[tuple[int, float]],
    reward_names: Sequence[str] | None = None,
    *,
    min_reward_rise: float = 0.0,
    min_accuracy_drop: float = 0.01,
) -> tuple[TrendCheck, ...]:
    """Flag each reward whose fitted rise over training exceeds `min_reward_rise` while dev accuracy's fitted
    change over the same span falls by more than `min_accuracy_drop` (absolute accuracy).

    `curve` is the per-step table (`step`, `rewards/<name>/mean`); `dev_accuracy` maps step to the intermediate
    dev accuracy. Slopes are least squares, so one noisy point does not decide the flag.
    """
    frame = curve if isinstance(curve, pd.DataFrame) else pd.DataFrame(list(curve))
    points = sorted(dev_accuracy.items() if isinstance(dev_accuracy, Mapping) else dev_accuracy)
    dev_steps = np.array([s for s, _ in points], dtype=float)
    dev_values = np.array([a for _, a in points], dtype=float)
    if reward_names is None:
        reward_names = [m.group(1) for m in map(_REWARD_COLUMN.match, frame.columns) if m]
    steps = frame["step"].to_numpy(dtype=float) if "step" in frame else np.array([])
    span = float(np.ptp(steps)) if steps.size else 0.0
    accuracy_slope = least_squares_slope(dev_steps, dev_values)
    accuracy_change = accuracy_slope * span if accuracy_slope is not None else None
    checks = []
    for name in reward_names:
        column = f"rewards/{name}/mean"
        if column not in frame:
            raise ValueError(f"curve has no column {column!r}")
        values = frame[column].to_numpy(dtype=float)
        reward_slope = least_squares_slope(steps, values)
        reward_change = reward_slope * span if reward_slope is not None else None
        flagged = (
            reward_change is not None
            and accuracy_change is not None
            and reward_change > min_reward_rise
            and accuracy_change < -min_accuracy_drop
        )
        checks.append(
            TrendCheck(
                reward=name,
                curve_points=int(np.isfinite(values).sum()),
                dev_points=len(points),
                reward_slope=reward_slope,
                accuracy_slope=accuracy_slope,
                reward_change=reward_change,
                accuracy_change=accuracy_change,
                flagged=bool(flagged),
            )
        )
    return tuple(checks)


def answer_shape(records: Records, name: str = "", correct_column: str = "correct") -> AnswerShape:
    """Length, line and step-like-line statistics of the completions, for correct and for wrong answers."""
    frame = load_records(records)
    if "completion" not in frame or correct_column not in frame:
        raise ValueError(f"records need 'completion' and {correct_column!r} columns")
    text = frame["completion"].fillna("").astype(str)
    chars = text.str.len().to_numpy(dtype=float)
    lines = np.where(chars > 0, text.str.count("\n").to_numpy(dtype=float) + 1, 0.0)
    steps = text.str.count(_STEP_LINE).to_numpy(dtype=float)
    tokens = frame["completion_tokens"].to_numpy(dtype=float) if "completion_tokens" in frame else None
    correct = frame[correct_column].to_numpy(dtype=bool)

    def group(mask: np.ndarray) -> ShapeStats:
        if not mask.any():
            return ShapeStats(0, None, None, None, None, None, None)
        return ShapeStats(
            n=int(mask.sum()),
            mean_chars=float(chars[mask].mean()),
            median_chars=float(np.median(chars[mask])),
            mean_tokens=float(tokens[mask].mean()) if tokens is not None else None,
            mean_lines=float(lines[mask].mean()),
            mean_step_lines=float(steps[mask].mean()),
            share_with_steps=float((steps[mask] > 0).mean()),
        )

    return AnswerShape(name=name, correct=group(correct), wrong=group(~correct))
