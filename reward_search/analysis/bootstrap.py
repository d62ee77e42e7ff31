"""Bootstrap confidence intervals for accuracy, the paper's F1, and paired differences between configurations.

Intervals come from `scipy.stats.bootstrap` resampling *item indices*: one call evaluates every statistic
(accuracy and F1 of each configuration, paired differences) on the same resamples, so differences are paired by
construction, and each batch of resamples costs one index count and one matrix product, not a Python loop.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps

from reward_search.analysis.vectors import pair_vectors

DEFAULT_RESAMPLES = 10_000
DEFAULT_BATCH = 2_000  # resamples per batch: bounds memory at about batch × n × 8 bytes per array


@dataclass(frozen=True)
class Interval:
    """A closed interval [low, high]."""

    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class BootstrapCI:
    """A point estimate with its percentile and BCa bootstrap intervals."""

    estimate: float
    percentile: Interval
    bca: Interval
    standard_error: float
    confidence_level: float
    n_resamples: int


@dataclass(frozen=True)
class MetricCIs:
    """One configuration's accuracy and paper-F1 with bootstrap intervals."""

    name: str
    n: int
    correct: int
    extracted: int
    accuracy: BootstrapCI
    f1: BootstrapCI

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PairedDifference:
    """`first` minus `second` on the same questions (paired resampling of question indices)."""

    first: str
    second: str
    n: int
    accuracy: BootstrapCI
    f1: BootstrapCI

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------------------------
# Point metrics


def paper_f1(correct: ArrayLike, extracted: ArrayLike | None = None) -> float:
    """The paper's F1 from per-item vectors: TP = extracted & correct, FP = extracted & wrong, FN = not extracted.

    F1 = 2TP / (2TP + FP + FN), which equals 2·acc / (1 + acc) because every item has a gold answer.
    """
    c, e = pair_vectors(correct, extracted)
    tp = int(np.count_nonzero(c))
    fp = int(np.count_nonzero(e & ~c))
    fn = int(np.count_nonzero(~e))
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def accuracy_from_f1(f1: float) -> float:
    """The accuracy implied by a paper F1 (inverse of `task.grading.f1_from_accuracy`): f1 / (2 − f1)."""
    return f1 / (2 - f1)


# ---------------------------------------------------------------------------------------------------------------
# Bootstrap


def bootstrap_metrics(
    correct: ArrayLike,
    extracted: ArrayLike | None = None,
    *,
    name: str = "",
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence_level: float = 0.95,
    seed: int = 0,
    batch: int | None = DEFAULT_BATCH,
) -> MetricCIs:
    """Accuracy and paper-F1 of one configuration with percentile and BCa bootstrap intervals."""
    c, e = pair_vectors(correct, extracted)
    cis = bootstrap_rows(
        c[None], e[None], (), n_resamples=n_resamples, confidence_level=confidence_level, seed=seed, batch=batch
    )
    return MetricCIs(name, c.size, int(c.sum()), int(e.sum()), cis[0], cis[1])


def paired_difference(
    first: ArrayLike,
    second: ArrayLike,
    first_extracted: ArrayLike | None = None,
    second_extracted: ArrayLike | None = None,
    *,
    names: tuple[str, str] = ("first", "second"),
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence_level: float = 0.95,
    seed: int = 0,
    batch: int | None = DEFAULT_BATCH,
) -> PairedDifference:
    """Bootstrap CIs of `first − second` (accuracy and F1), resampling question indices jointly."""
    c1, e1 = pair_vectors(first, first_extracted)
    c2, e2 = pair_vectors(second, second_extracted)
    if c1.size != c2.size:
        raise ValueError(f"paired vectors differ in length: {c1.size} vs {c2.size}")
    both, extracted = np.stack([c1, c2]), np.stack([e1, e2])
    cis = bootstrap_rows(
        both, extracted, [(0, 1)], n_resamples=n_resamples, confidence_level=confidence_level, seed=seed, batch=batch
    )
    return PairedDifference(names[0], names[1], c1.size, cis[4], cis[5])


def bootstrap_rows(
    correct: np.ndarray,
    extracted: np.ndarray,
    pairs: Sequence[tuple[int, int]] = (),
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence_level: float = 0.95,
    seed: int = 0,
    batch: int | None = DEFAULT_BATCH,
) -> list[BootstrapCI]:
    """The engine: CIs from one set of resamples of question indices, for (k × n) boolean matrices.

    Returns, in order: accuracy of each of the k rows, paper-F1 of each row, then for each (i, j) in `pairs` the
    accuracy difference row i − row j, then the F1 differences in the same order.
    """
    k, n = correct.shape
    columns = np.concatenate([correct, extracted]).T.astype(np.float64)  # (n, 2k): sums by one matrix product
    first = np.array([i for i, _ in pairs], dtype=np.intp)
    second = np.array([j for _, j in pairs], dtype=np.intp)

    def statistic(indices: np.ndarray, axis: int = -1) -> np.ndarray:
        flat = indices.reshape(-1, indices.shape[-1])
        m = flat.shape[1]
        sums = _resample_counts(flat, n) @ columns  # (R, 2k)
        tp, got = sums[:, :k], sums[:, k:]
        accuracy = tp / m
        f1 = _f1(tp, got - tp, m - got)
        rows = [accuracy, f1, accuracy[:, first] - accuracy[:, second], f1[:, first] - f1[:, second]]
        out = np.concatenate(rows, axis=1).T  # (S, R)
        return out[:, 0] if indices.ndim == 1 else out

    common = dict(vectorized=True, confidence_level=confidence_level, batch=batch)
    data = (np.arange(n),)
    percentile = sps.bootstrap(
        data, statistic, n_resamples=n_resamples, method="percentile", rng=np.random.default_rng(seed), **common
    )
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        # A constant statistic (e.g. identical configurations) has no BCa interval; its percentile one is exact.
        warnings.simplefilter("ignore", sps.DegenerateDataWarning)
        bca = sps.bootstrap(data, statistic, n_resamples=0, bootstrap_result=percentile, method="BCa", **common)
    estimate = statistic(np.arange(n))
    p_low, p_high = (
        np.atleast_1d(percentile.confidence_interval.low),
        np.atleast_1d(percentile.confidence_interval.high),
    )
    b_low, b_high = np.atleast_1d(bca.confidence_interval.low), np.atleast_1d(bca.confidence_interval.high)
    b_low, b_high = np.where(np.isnan(b_low), p_low, b_low), np.where(np.isnan(b_high), p_high, b_high)
    errors = np.atleast_1d(percentile.standard_error)
    return [
        BootstrapCI(
            estimate=float(estimate[s]),
            percentile=Interval(float(p_low[s]), float(p_high[s])),
            bca=Interval(float(b_low[s]), float(b_high[s])),
            standard_error=float(errors[s]),
            confidence_level=confidence_level,
            n_resamples=n_resamples,
        )
        for s in range(estimate.size)
    ]


def _resample_counts(indices: np.ndarray, n: int) -> np.ndarray:
    """How often each of the n items occurs in each resample row: (R, m) indices -> (R, n) float counts."""
    rows = indices.shape[0]
    offsets = np.arange(rows, dtype=np.int64)[:, None] * n
    counts = np.bincount((indices + offsets).ravel(), minlength=rows * n)
    return counts.reshape(rows, n).astype(np.float64)


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
