"""The search-quality benchmark's arm logic and statistics (`benchmarks/search_quality.py`), on plain records.

A search arm (guided, unguided, an LLM proposer) is run once per seed; each run's leaderboard becomes
`CandidateRow`s (dev accuracy from the search, test accuracy from the trial's own test records, the rank under the
one ranking rule, planted decoys marked by their origin). From those rows: per-round mean and best dev accuracy
per arm with bootstrap intervals (over candidates for the mean, over seeds for the best), guided minus unguided
paired by seed, the decoys' ranks or rejection reasons, and the rank correlation of dev and test accuracy over
candidates. The best reward against the baseline and the untrained model is paired by question id (McNemar and a
paired bootstrap from `analysis/stats.py`). Nothing here reads a run directory: the tests feed it fake records.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from reward_search.analysis.stats import mcnemar_test, paired_difference
from reward_search.analysis.vectors import align_by_ids
from reward_search.candidates.records import LeaderboardEntry, rank_entries, rank_labels

PLANTED = "planted"  # the origin proposer of a planted decoy (proposers/planted.py)
RESAMPLES = 4000


@dataclass(frozen=True)
class CandidateRow:
    """One candidate of one search run, as the benchmark reads it."""

    arm: str
    seed: int
    round: int
    name: str
    candidate_id: str
    proposer: str
    status: str
    dev_accuracy: float | None = None
    test_accuracy: float | None = None
    trial_key: str | None = None
    rank: str | None = None  # the rank label among the run's screened candidates ("3", "=2"); None: not ranked
    position: int | None = None  # 0-based place in the ranked order (ties broken by candidate id)
    ranked_of: int = 0  # how many candidates of the run were ranked
    reasons: tuple[str, ...] = ()

    @property
    def planted(self) -> bool:
        return self.proposer == PLANTED

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reasons": list(self.reasons), "planted": self.planted}


def rows_from_entries(
    arm: str,
    seed: int,
    entries: Sequence[LeaderboardEntry],
    metric: str = "accuracy",
    test_accuracy: Mapping[str, float] | None = None,
) -> list[CandidateRow]:
    """The run's leaderboard as rows, ranked by `records.rank_entries`; `test_accuracy` maps candidate ids."""
    ranked = rank_entries(entries, metric)
    labels = dict(zip((e.candidate_id for e in ranked), rank_labels(ranked, metric), strict=True))
    places = {e.candidate_id: i for i, e in enumerate(ranked)}
    tests = test_accuracy or {}
    return [
        CandidateRow(
            arm=arm,
            seed=seed,
            round=e.round,
            name=e.name,
            candidate_id=e.candidate_id,
            proposer=e.proposer,
            status=e.status,
            dev_accuracy=e.accuracy if e.status == "done" else None,
            test_accuracy=tests.get(e.candidate_id),
            trial_key=e.trial_key,
            rank=labels.get(e.candidate_id),
            position=places.get(e.candidate_id),
            ranked_of=len(ranked),
            reasons=tuple(e.reasons),
        )
        for e in sorted(entries, key=lambda e: (e.round, e.name, e.candidate_id))
    ]


def best_row(rows: Sequence[CandidateRow]) -> CandidateRow | None:
    """The run's top-ranked candidate (what the search would hand a user, planted or not), or None."""
    ranked = [r for r in rows if r.position is not None]
    return min(ranked, key=lambda r: r.position or 0, default=None)


def mean_ci(values: Sequence[float], seed: int = 0, resamples: int = RESAMPLES) -> dict[str, Any]:
    """The mean with a 95% percentile bootstrap interval (None with fewer than two values)."""
    data = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    out: dict[str, Any] = {"n": int(data.size), "estimate": float(data.mean()) if data.size else None}
    out["low"] = out["high"] = None
    if data.size >= 2:
        if np.ptp(data) == 0:
            out["low"] = out["high"] = float(data[0])
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = sps.bootstrap(
                    (data,), np.mean, n_resamples=resamples, method="percentile", rng=np.random.default_rng(seed)
                )
            out["low"], out["high"] = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return out


def _own(rows: Sequence[CandidateRow]) -> list[CandidateRow]:
    """The proposer's own screened candidates (planted decoys are reported apart)."""
    return [r for r in rows if not r.planted and r.dev_accuracy is not None]


def round_curves(rows: Sequence[CandidateRow]) -> dict[str, list[dict[str, Any]]]:
    """Per arm and round: the mean dev accuracy of the proposer's candidates (CI over candidates, every seed
    pooled), the best of the round (CI over seeds) and the best so far (CI over seeds)."""
    curves: dict[str, list[dict[str, Any]]] = {}
    for arm in sorted({r.arm for r in rows}):
        own = _own([r for r in rows if r.arm == arm])
        seeds = sorted({r.seed for r in rows if r.arm == arm})
        rounds = sorted({r.round for r in own})
        points = []
        for k in rounds:
            in_round = [r for r in own if r.round == k]
            best = [max(r.dev_accuracy for r in in_round if r.seed == s) for s in seeds if _has(in_round, s)]
            so_far = [max(r.dev_accuracy for r in own if r.seed == s and r.round <= k) for s in seeds]
            points.append(
                {
                    "round": k,
                    "candidates": len(in_round),
                    "mean": mean_ci([r.dev_accuracy for r in in_round], seed=k),
                    "best": mean_ci(best, seed=k),
                    "best_so_far": mean_ci(so_far, seed=k),
                }
            )
        curves[arm] = points
    return curves


def _has(rows: Sequence[CandidateRow], seed: int) -> bool:
    return any(r.seed == seed for r in rows)


def best_by_seed(rows: Sequence[CandidateRow], arm: str, field: str) -> dict[int, float]:
    """Per seed of `arm`: `field` ("dev_accuracy" or "test_accuracy") of the run's best-ranked candidate."""
    found = {}
    for seed in sorted({r.seed for r in rows if r.arm == arm}):
        best = best_row([r for r in rows if r.arm == arm and r.seed == seed])
        value = getattr(best, field) if best is not None else None
        if value is not None:
            found[seed] = float(value)
    return found


def seed_difference(first: Mapping[int, float], second: Mapping[int, float], seed: int = 0) -> dict[str, Any]:
    """`first - second` paired by seed: the differences, their mean and a bootstrap CI over seeds."""
    seeds = sorted(set(first) & set(second))
    diffs = [first[s] - second[s] for s in seeds]
    return {"seeds": seeds, "differences": diffs, **mean_ci(diffs, seed=seed)}


def arm_comparison(rows: Sequence[CandidateRow], first: str, second: str) -> dict[str, Any]:
    """`first` minus `second` (e.g. guided minus unguided): best dev and best test accuracy, paired by seed."""
    out: dict[str, Any] = {"first": first, "second": second}
    for field in ("dev_accuracy", "test_accuracy"):
        difference = seed_difference(best_by_seed(rows, first, field), best_by_seed(rows, second, field))
        out[f"best_{field}"] = {**difference, "verdict": verdict(difference, (first, second))}
    return out


def verdict(difference: Mapping[str, Any], names: tuple[str, str]) -> str:
    """What a difference with its interval says: which side is better, none shown, or no interval to say it."""
    low, high = difference.get("low"), difference.get("high")
    if difference.get("estimate") is None:
        return "no paired values"
    if low is None or high is None:
        return f"no interval from {difference.get('n', 0)} value(s): more seeds are needed to tell"
    if low > 0:
        return f"{names[0]} better (95% CI above 0)"
    if high < 0:
        return f"{names[1]} better (95% CI below 0)"
    return "no difference shown (95% CI includes 0)"


def control_gaps(rows: Sequence[CandidateRow], arm: str, controls: Mapping[str, float | None]) -> dict[str, Any]:
    """Per control (baseline, untrained): the arm's best test accuracy minus the control's, over seeds."""
    best = best_by_seed(rows, arm, "test_accuracy")
    gaps = {}
    for name, value in controls.items():
        if value is None:
            continue
        gap = mean_ci([v - value for v in best.values()])
        gaps[name] = {**gap, "verdict": verdict(gap, (arm, name))}
    return gaps


def paired_test(first: pd.DataFrame, second: pd.DataFrame, names: tuple[str, str], seed: int = 0) -> dict[str, Any]:
    """`first` against `second` on the same test questions, paired by question id: McNemar and a paired bootstrap
    of the accuracy difference (`analysis/stats.py`)."""
    aligned = align_by_ids({names[0]: first, names[1]: second})
    a, b = (aligned[n]["correct"].to_numpy(dtype=bool) for n in names)
    test = mcnemar_test(a, b, names=names)
    diff = paired_difference(a, b, names=names, n_resamples=RESAMPLES, seed=seed)
    ci = diff.accuracy
    return {
        "first": names[0],
        "second": names[1],
        "n": int(a.size),
        "first_accuracy": float(a.mean()),
        "second_accuracy": float(b.mean()),
        "difference": ci.estimate,
        "ci_low": ci.percentile.low,
        "ci_high": ci.percentile.high,
        "mcnemar": {
            "b": test.b,
            "c": test.c,
            "statistic": test.statistic,
            "p_value": test.p_value,
            "method": test.method,
        },
    }


def decoy_table(rows: Sequence[CandidateRow]) -> list[dict[str, Any]]:
    """Each planted decoy in each run: its status, and its rank among the run's screened candidates or the
    reasons it was rejected (or failed)."""
    table = []
    for r in sorted((r for r in rows if r.planted), key=lambda r: (r.name, r.arm, r.seed)):
        entry = {"decoy": r.name, "arm": r.arm, "seed": r.seed, "status": r.status}
        if r.rank is not None:
            entry.update(rank=r.rank, of=r.ranked_of, dev_accuracy=r.dev_accuracy, test_accuracy=r.test_accuracy)
        else:
            entry["reasons"] = list(r.reasons)
        table.append(entry)
    return table


def dev_test_correlation(rows: Sequence[CandidateRow]) -> dict[str, Any]:
    """Spearman's rank correlation of dev and test accuracy over screened candidates (each trial once)."""
    pairs: dict[str, tuple[float, float]] = {}
    for r in rows:
        if r.dev_accuracy is not None and r.test_accuracy is not None:
            pairs.setdefault(r.trial_key or f"{r.arm}:{r.seed}:{r.candidate_id}", (r.dev_accuracy, r.test_accuracy))
    out: dict[str, Any] = {"n": len(pairs), "rho": None, "p_value": None}
    if len(pairs) < 3:
        out["note"] = "fewer than 3 candidates with both dev and test accuracy"
        return out
    dev, test = (np.array(v, dtype=float) for v in zip(*pairs.values(), strict=True))
    if np.ptp(dev) == 0 or np.ptp(test) == 0:
        out["note"] = "dev or test accuracy is the same for every candidate: no ranking to correlate"
        return out
    result = sps.spearmanr(dev, test)
    out["rho"], out["p_value"] = float(result.statistic), float(result.pvalue)
    return out


def quality_figure(
    curves: Mapping[str, Sequence[Mapping[str, Any]]], controls: Mapping[str, float | None], path: Path
) -> Path:
    """Two panels, per round and arm: the mean and the best dev accuracy with their intervals; the controls'
    dev accuracies (baseline, untrained) as horizontal lines."""
    from matplotlib.figure import Figure

    from reward_search.analysis.figures import save

    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2, sharey=True)
    titles = {"mean": "mean of the round's candidates", "best": "best of the round"}
    for ax, (key, title) in zip(axes, titles.items(), strict=True):
        for i, (arm, points) in enumerate(sorted(curves.items())):
            xs = np.array([p["round"] for p in points], dtype=float) + 0.06 * (i - 1)
            ys = np.array([_nan(p[key]["estimate"]) for p in points])
            low = np.array([_nan(p[key]["low"], p[key]["estimate"]) for p in points])
            high = np.array([_nan(p[key]["high"], p[key]["estimate"]) for p in points])
            ax.errorbar(xs, ys, yerr=[ys - low, high - ys], marker="o", capsize=3, label=arm)
        for j, (name, value) in enumerate(sorted(controls.items())):
            if value is not None:
                ax.axhline(value, linestyle="--", color=("#7f7f7f", "#bcbd22", "#17becf")[j % 3], label=name)
        ax.set_title(title)
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("dev accuracy (strict)")
    axes[1].legend(loc="best", fontsize=8)
    fig.suptitle("Search quality: dev accuracy per round (95% bootstrap intervals)")
    return save(fig, path)


def _nan(value: float | None, fallback: float | None = None) -> float:
    chosen = value if value is not None else fallback
    return float("nan") if chosen is None else float(chosen)
