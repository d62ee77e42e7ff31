"""McNemar's test for every pair of configurations on the same questions, with family-wise corrections.

Two modes (`analysis.mcnemar`): `exact` (this project) uses the exact binomial test below `exact_threshold`
discordant pairs and Holm as the primary correction; `paper` (the reference) uses the continuity-corrected
chi-square for every pair (p = 1 without discordant pairs) and Bonferroni. Both corrections are always computed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from reward_search.analysis.vectors import bool_matrix, bool_vector


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test of `first` against `second`; b = only `first` right, c = only `second` right."""

    first: str
    second: str
    n: int
    both: int
    b: int
    c: int
    neither: int
    statistic: float
    p_value: float
    method: str  # "exact" (binomial on b + c) or "chi2" (with continuity correction)


@dataclass(frozen=True)
class Correction:
    """Family-wise adjusted p-values and reject decisions at `alpha`."""

    method: str
    alpha: float
    p_adjusted: tuple[float, ...]
    reject: tuple[bool, ...]


@dataclass(frozen=True)
class PairwiseComparison:
    """A McNemar test with its Bonferroni- and Holm-adjusted p-values within the family of all pairs."""

    test: McNemarResult
    p_bonferroni: float
    reject_bonferroni: bool
    p_holm: float
    reject_holm: bool


MCNEMAR_MODES: dict[str, str] = {"exact": "holm", "paper": "bonferroni"}  # mode -> primary correction


@dataclass(frozen=True)
class McNemarTable:
    """Every pair of configurations tested, corrected as one family."""

    alpha: float
    exact_threshold: int
    comparisons: tuple[PairwiseComparison, ...]
    mode: str = "exact"

    @property
    def correction(self) -> str:
        """The primary correction of the mode ("holm" or "bonferroni")."""
        return MCNEMAR_MODES[self.mode]

    def p_matrix(self, names: Sequence[str], kind: str = "holm") -> np.ndarray:
        """Symmetric matrix of p-values ("raw", "bonferroni" or "holm"), NaN on the diagonal (for heatmaps)."""
        fields = {"raw": lambda r: r.test.p_value, "bonferroni": lambda r: r.p_bonferroni, "holm": lambda r: r.p_holm}
        if kind not in fields:
            raise ValueError(f"kind must be one of {sorted(fields)}, got {kind!r}")
        position = {name: i for i, name in enumerate(names)}
        matrix = np.full((len(names), len(names)), np.nan)
        for row in self.comparisons:
            i, j = position[row.test.first], position[row.test.second]
            matrix[i, j] = matrix[j, i] = fields[kind](row)
        return matrix

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def mcnemar_counts(
    both: int,
    b: int,
    c: int,
    neither: int,
    *,
    names: tuple[str, str] = ("first", "second"),
    method: str = "auto",
    exact_threshold: int = 25,
) -> McNemarResult:
    """McNemar from the 2x2 counts. method "auto": exact binomial when b + c < `exact_threshold`, else chi-square
    with continuity correction; "chi2": always the corrected chi-square, p = 1 when b + c = 0 (the reference)."""
    if method not in ("auto", "chi2"):
        raise ValueError(f"method must be 'auto' or 'chi2', got {method!r}")
    n = both + b + c + neither
    if method == "chi2" and b + c == 0:
        return McNemarResult(names[0], names[1], n, both, b, c, neither, 0.0, 1.0, "chi2")
    exact = method == "auto" and (b + c < exact_threshold or b + c == 0)  # chi-square undefined without discordance
    result = mcnemar([[both, b], [c, neither]], exact=exact, correction=True)
    return McNemarResult(
        first=names[0],
        second=names[1],
        n=n,
        both=both,
        b=b,
        c=c,
        neither=neither,
        statistic=float(result.statistic),
        p_value=float(result.pvalue),
        method="exact" if exact else "chi2",
    )


def mcnemar_test(
    first: ArrayLike,
    second: ArrayLike,
    *,
    names: tuple[str, str] = ("first", "second"),
    exact_threshold: int = 25,
    method: str = "auto",
) -> McNemarResult:
    """McNemar on paired correctness vectors (see `mcnemar_counts` for the methods)."""
    a, b_vec = bool_vector(first), bool_vector(second)
    if a.size != b_vec.size:
        raise ValueError(f"paired vectors differ in length: {a.size} vs {b_vec.size}")
    both = int(np.count_nonzero(a & b_vec))
    b = int(np.count_nonzero(a & ~b_vec))
    c = int(np.count_nonzero(~a & b_vec))
    neither = a.size - both - b - c
    return mcnemar_counts(both, b, c, neither, names=names, method=method, exact_threshold=exact_threshold)


def adjust_pvalues(pvalues: Sequence[float], method: str, alpha: float = 0.05) -> Correction:
    """Family-wise correction ("bonferroni" or "holm") through statsmodels' `multipletests`."""
    if len(pvalues) == 0:
        return Correction(method, alpha, (), ())
    reject, adjusted, _, _ = multipletests(np.asarray(pvalues, dtype=float), alpha=alpha, method=method)
    return Correction(method, alpha, tuple(float(p) for p in adjusted), tuple(bool(r) for r in reject))


def pairwise_mcnemar(
    correctness: Mapping[str, ArrayLike], *, alpha: float = 0.05, exact_threshold: int = 25, mode: str = "exact"
) -> McNemarTable:
    """McNemar for every pair of configurations, with Bonferroni and Holm over the whole family of pairs."""
    if mode not in MCNEMAR_MODES:
        raise ValueError(f"mode must be one of {sorted(MCNEMAR_MODES)}, got {mode!r}")
    names, matrix = bool_matrix(correctness)
    method = "chi2" if mode == "paper" else "auto"
    tests = [
        mcnemar_test(matrix[i], matrix[j], names=(names[i], names[j]), exact_threshold=exact_threshold, method=method)
        for i, j in combinations(range(len(names)), 2)
    ]
    pvalues = [t.p_value for t in tests]
    bonferroni, holm = adjust_pvalues(pvalues, "bonferroni", alpha), adjust_pvalues(pvalues, "holm", alpha)
    rows = tuple(
        PairwiseComparison(t, bonferroni.p_adjusted[i], bonferroni.reject[i], holm.p_adjusted[i], holm.reject[i])
        for i, t in enumerate(tests)
    )
    return McNemarTable(alpha=alpha, exact_threshold=exact_threshold, comparisons=rows, mode=mode)
