"""Statistics speed for a paper-sized finalize: 10 configurations × 1,319 questions, 10,000 bootstrap resamples.

Times `summarize_configurations` (accuracy and F1 CIs per configuration, percentile and BCa; paired difference CIs
against the best; all 45 pairwise McNemar tests with Bonferroni and Holm) and its parts. Two baselines run in the
same process on the same data, each measured on one configuration and extrapolated to the full workload:
a naive Python loop over resamples (1,000 resamples, percentile only, so it is a lower bound), and one plain
`scipy.stats.bootstrap` call per statistic on the raw vector (BCa). Prints the figures and writes
``benchmarks/results/stats_speed.json``.

    .venv/bin/python benchmarks/stats_speed.py [--configs 10] [--questions 1319] [--resamples 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import stats as sps

from reward_search import io
from reward_search.analysis.bootstrap import bootstrap_rows
from reward_search.analysis.mcnemar import pairwise_mcnemar
from reward_search.analysis.stats import summarize_configurations

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_SECONDS = 10.0


def make_data(configs: int, questions: int, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Correlated per-question correctness (a shared question difficulty) from ~4% to ~70% accuracy."""
    rng = np.random.default_rng(seed)
    difficulty = rng.random(questions)
    correctness, extracted = {}, {}
    for i, skill in enumerate(np.linspace(0.04, 0.70, configs)):
        correct = (difficulty < skill) ^ (rng.random(questions) < 0.05)
        correctness[f"config-{i}"] = correct
        extracted[f"config-{i}"] = correct | (rng.random(questions) < 0.8)
    return correctness, extracted


def timed(function: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def naive_loop_seconds_per_resample(correct: np.ndarray, extracted: np.ndarray, resamples: int) -> float:
    """A Python loop over resamples computing accuracy and F1 for one configuration (the shape we avoid)."""
    rng = np.random.default_rng(0)
    n = correct.size
    started = time.perf_counter()
    accuracies, f1s = [], []
    for _ in range(resamples):
        index = rng.integers(0, n, n)
        c, e = correct[index], extracted[index]
        tp = np.count_nonzero(c)
        fp = np.count_nonzero(e & ~c)
        fn = n - np.count_nonzero(e)
        accuracies.append(tp / n)
        f1s.append(2 * tp / (2 * tp + fp + fn))
    np.percentile(accuracies, [2.5, 97.5])
    np.percentile(f1s, [2.5, 97.5])
    return (time.perf_counter() - started) / resamples


def plain_scipy_seconds(correct: np.ndarray, resamples: int) -> float:
    """One ordinary `scipy.stats.bootstrap` BCa call on one configuration's raw vector (accuracy only)."""
    started = time.perf_counter()
    sps.bootstrap((correct.astype(float),), np.mean, n_resamples=resamples, method="BCa", rng=np.random.default_rng(0))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=10)
    parser.add_argument("--questions", type=int, default=1319)
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--naive-resamples", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS / "stats_speed.json"))
    args = parser.parse_args()

    correctness, extracted = make_data(args.configs, args.questions)
    names = list(correctness)
    k = len(names)
    correct = np.stack([correctness[n] for n in names])
    got = np.stack([extracted[n] for n in names])
    best = int(np.argmax(correct.mean(axis=1)))
    pairs = [(i, best) for i in range(k) if i != best]
    print(f"{k} configurations × {args.questions} questions, {args.resamples} resamples, {os.cpu_count()} CPUs")

    summarize_configurations(correctness, extracted, n_resamples=200)  # warm up imports and caches
    total = timed(lambda: summarize_configurations(correctness, extracted, n_resamples=args.resamples), args.repeats)
    boot = timed(lambda: bootstrap_rows(correct, got, pairs, n_resamples=args.resamples), args.repeats)
    tests = timed(lambda: pairwise_mcnemar(correctness), args.repeats)
    summary = summarize_configurations(correctness, extracted, n_resamples=args.resamples)

    # Work units: one configuration's accuracy + F1 on one resample; a paired difference needs two of them.
    units = k + 2 * len(pairs)
    per_resample = naive_loop_seconds_per_resample(correct[best], got[best], args.naive_resamples)
    naive_full = per_resample * args.resamples * units
    plain_one = plain_scipy_seconds(correct[best], args.resamples)
    plain_full = plain_one * (2 * k + 2 * len(pairs))  # one call per statistic: acc and F1, Δacc and ΔF1

    total_s = statistics.median(total)
    report = {
        "benchmark": "stats_speed",
        "configurations": k,
        "questions": args.questions,
        "resamples": args.resamples,
        "pairs_tested": len(summary.mcnemar.comparisons),
        "paired_differences": len(summary.differences),
        "vectorised": {
            "total_seconds_median": round(total_s, 3),
            "total_seconds_all": [round(t, 3) for t in total],
            "bootstrap_seconds_median": round(statistics.median(boot), 3),
            "mcnemar_and_corrections_seconds_median": round(statistics.median(tests), 4),
        },
        "baseline_naive_loop": {
            "measured_resamples": args.naive_resamples,
            "seconds_per_resample_one_config": round(per_resample, 7),
            "work_units_per_resample": units,
            "extrapolated_seconds": round(naive_full, 2),
            "note": "percentile only (no BCa jackknife), so a lower bound on the naive cost",
        },
        "baseline_plain_scipy": {
            "seconds_one_call": round(plain_one, 3),
            "calls": 2 * k + 2 * len(pairs),
            "extrapolated_seconds": round(plain_full, 2),
        },
        "speedup_vs_naive_loop": round(naive_full / total_s, 1),
        "speedup_vs_plain_scipy": round(plain_full / total_s, 1),
        "target": f"full statistics under {TARGET_SECONDS:.0f} s on 2 cores",
        "meets_target": total_s < TARGET_SECONDS,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
    }
    io.write_json(args.out, report)
    print(f"full statistics: {total_s:.3f} s (median of {args.repeats}; target < {TARGET_SECONDS:.0f} s)")
    boot_s = statistics.median(boot)
    print(f"  bootstrap (acc + F1 CIs, {len(pairs)} paired differences, percentile + BCa): {boot_s:.3f} s")
    print(f"  McNemar ({len(summary.mcnemar.comparisons)} pairs) + Bonferroni/Holm: {statistics.median(tests):.4f} s")
    print(f"naive Python loop: {per_resample * 1e6:.1f} µs/resample/config → {naive_full:.1f} s extrapolated")
    print(
        f"plain scipy.bootstrap per statistic: {plain_one:.3f} s/call × {2 * k + 2 * len(pairs)} → {plain_full:.1f} s"
    )
    naive_x, plain_x = report["speedup_vs_naive_loop"], report["speedup_vs_plain_scipy"]
    print(f"speed-up: {naive_x}x vs naive loop, {plain_x}x vs plain scipy")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
