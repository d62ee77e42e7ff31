"""Statistics for a finalize: one call (`summarize_configurations`) for the report, and seed statistics.

The pieces live in `bootstrap` (CIs, paired differences, the paper's F1) and `mcnemar` (pairwise tests,
Bonferroni/Holm); they are re-exported here so callers import from one place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from reward_search.analysis.bootstrap import (
    DEFAULT_BATCH,
    DEFAULT_RESAMPLES,
    BootstrapCI,
    Interval,
    MetricCIs,
    PairedDifference,
    accuracy_from_f1,
    bootstrap_metrics,
    bootstrap_rows,
    paired_difference,
    paper_f1,
)
from reward_search.analysis.mcnemar import (
    Correction,
    McNemarResult,
    McNemarTable,
    PairwiseComparison,
    adjust_pvalues,
    mcnemar_counts,
    mcnemar_test,
    pairwise_mcnemar,
)
from reward_search.analysis.vectors import bool_matrix, pair_vectors
from reward_search.task.grading import f1_from_accuracy

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_RESAMPLES",
    "BootstrapCI",
    "ConfigurationSummary",
    "Correction",
    "Interval",
    "McNemarResult",
    "McNemarTable",
    "MetricCIs",
    "PairedDifference",
    "PairwiseComparison",
    "SeedStats",
    "accuracy_from_f1",
    "adjust_pvalues",
    "bootstrap_metrics",
    "f1_from_accuracy",
    "mcnemar_counts",
    "mcnemar_test",
    "paired_difference",
    "pairwise_mcnemar",
    "paper_f1",
    "seed_statistics",
    "summarize_configurations",
]


@dataclass(frozen=True)
class SeedStats:
    """Spread of one metric across training seeds (std with ddof=1; None for a single seed)."""

    n: int
    mean: float
    std: float | None
    min: float
    max: float
    range: float
    values: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ConfigurationSummary:
    """Everything the report needs about a set of configurations evaluated on the same questions."""

    names: tuple[str, ...]
    n: int
    reference: str  # the configuration the paired differences are taken against (best accuracy by default)
    confidence_level: float
    n_resamples: int
    seed: int
    metrics: tuple[MetricCIs, ...]
    differences: tuple[PairedDifference, ...]  # each other configuration minus the reference
    mcnemar: McNemarTable

    def metric(self, name: str) -> MetricCIs:
        for entry in self.metrics:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def seed_statistics(values: Sequence[float] | Mapping[Any, float]) -> SeedStats:
    """Mean, standard deviation (ddof=1), min, max and range of one metric across seeds."""
    data = np.asarray(list(values.values()) if isinstance(values, Mapping) else list(values), dtype=float)
    if data.size == 0:
        raise ValueError("seed statistics need at least one value")
    return SeedStats(
        n=int(data.size),
        mean=float(data.mean()),
        std=float(data.std(ddof=1)) if data.size > 1 else None,
        min=float(data.min()),
        max=float(data.max()),
        range=float(data.max() - data.min()),
        values=tuple(float(v) for v in data),
    )


def summarize_configurations(
    correctness: Mapping[str, ArrayLike],
    extracted: Mapping[str, ArrayLike] | None = None,
    *,
    reference: str | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence_level: float = 0.95,
    seed: int = 0,
    alpha: float = 0.05,
    exact_threshold: int = 25,
    batch: int | None = DEFAULT_BATCH,
    family: Sequence[str] | None = None,
    mcnemar: str = "exact",
) -> ConfigurationSummary:
    """Per-configuration accuracy/F1 CIs, paired differences against `reference`, and the McNemar table.

    `correctness` maps each configuration to its per-question correctness on the same questions; `extracted`
    (optional, same keys) says whether an answer was extracted, for the paper's F1 (absent: correct answers only).
    `reference` defaults to the configuration with the highest accuracy (the first one on ties). `family` names the
    configurations McNemar compares (default: all); `mcnemar` is its mode ("exact" or "paper", see `mcnemar`).

    Long because: the input checks and the three tables it assembles (CIs and paired differences from one joint
    bootstrap, then McNemar) share the correctness matrix and the names; splitting would pass them all around.
    """
    names, correct = bool_matrix(correctness)
    if extracted is None:
        got = correct.copy()
    else:
        missing = set(names) ^ set(extracted)
        if missing:
            raise ValueError(f"correctness and extracted name different configurations: {sorted(missing)}")
        got = np.stack([pair_vectors(correct[i], extracted[name])[1] for i, name in enumerate(names)])
    k, n = correct.shape
    accuracies = correct.mean(axis=1)
    ref = names[int(np.argmax(accuracies))] if reference is None else reference
    if ref not in names:
        raise ValueError(f"reference {ref!r} is not one of the configurations {list(names)}")
    r = names.index(ref)
    pairs = [(i, r) for i in range(k) if i != r]
    cis = bootstrap_rows(
        correct, got, pairs, n_resamples=n_resamples, confidence_level=confidence_level, seed=seed, batch=batch
    )
    p = len(pairs)
    metrics = tuple(
        MetricCIs(names[i], n, int(correct[i].sum()), int(got[i].sum()), cis[i], cis[k + i]) for i in range(k)
    )
    differences = tuple(
        PairedDifference(names[i], ref, n, cis[2 * k + j], cis[2 * k + p + j]) for j, (i, _) in enumerate(pairs)
    )
    members = list(names) if family is None else list(family)
    unknown = sorted(set(members) - set(names))
    if unknown:
        raise ValueError(f"McNemar family names unknown configurations: {unknown}")
    rows = dict(zip(names, correct, strict=True))
    table = pairwise_mcnemar(
        {name: rows[name] for name in members}, alpha=alpha, exact_threshold=exact_threshold, mode=mcnemar
    )
    return ConfigurationSummary(
        names=tuple(names),
        n=n,
        reference=ref,
        confidence_level=confidence_level,
        n_resamples=n_resamples,
        seed=seed,
        metrics=metrics,
        differences=differences,
        mcnemar=table,
    )
