"""Paired statistics of the graded selection signal (per-question gold log-probabilities of two configurations)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class SignalDifference:
    """`first − second` of the per-question gold log-probability, with a paired percentile bootstrap interval."""

    first: str
    second: str
    n: int
    first_mean: float
    second_mean: float
    difference: float  # the mean of the per-question differences, which equals first_mean − second_mean
    low: float
    high: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def paired_signal_difference(
    first: ArrayLike,
    second: ArrayLike,
    names: tuple[str, str] = ("first", "second"),
    n_resamples: int = 10_000,
    confidence_level: float = 0.95,
    seed: int = 0,
) -> SignalDifference:
    """Resamples question indices jointly, so the interval reflects the pairing (same questions, same order)."""
    a, b = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"paired vectors must be non-empty and equally long: {a.shape} vs {b.shape}")
    diff = a - b
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, size=(n_resamples, diff.size))].mean(axis=1)
    tail = (1 - confidence_level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return SignalDifference(
        names[0], names[1], int(a.size), float(a.mean()), float(b.mean()), float(diff.mean()), float(low), float(high)
    )


def ranking_rule(metric: str) -> str:
    """The one ranking rule in words, for the report and the tables."""
    if metric == "gold_logprob":
        return "gold log-probability, then accuracy, then candidate id (`selection.metric: gold_logprob`)"
    return "accuracy, then gold log-probability, then candidate id (`selection.metric: accuracy`)"
