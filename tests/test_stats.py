"""Statistics against known values: the paper's F1 figures, statsmodels' McNemar, bootstrap CIs, corrections,
seed statistics, strict-vs-flexible from Parquet records, and the reward-hacking audit."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar

from reward_search import io
from reward_search.analysis.audit import answer_shape, format_gap, format_gaps, reward_hacking_audit
from reward_search.analysis.stats import (
    accuracy_from_f1,
    adjust_pvalues,
    bootstrap_metrics,
    f1_from_accuracy,
    mcnemar_test,
    paired_difference,
    pairwise_mcnemar,
    paper_f1,
    seed_statistics,
    summarize_configurations,
)

N = 1319  # GSM8K test questions


def vector(correct: int, n: int = N) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[:correct] = True
    return out


def paired(both: int, b: int, c: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Two correctness vectors with the given 2×2 table (b = only the first right, c = only the second right)."""
    first = np.array([1] * both + [1] * b + [0] * c + [0] * neither, dtype=bool)
    second = np.array([1] * both + [0] * b + [1] * c + [0] * neither, dtype=bool)
    return first, second


# ---------------------------------------------------------------------------------------------------------------
# F1 ↔ accuracy


def test_paper_figures_map_between_accuracy_and_f1():
    assert f1_from_accuracy(0.660) == pytest.approx(0.795, abs=5e-4)  # best ensemble
    assert paper_f1(vector(577)) == pytest.approx(0.609, abs=5e-4)  # baseline: 577/1319
    assert paper_f1(vector(32)) == pytest.approx(0.047, abs=5e-4)  # random control: 32/1319
    assert accuracy_from_f1(f1_from_accuracy(0.660)) == pytest.approx(0.660)


def test_paper_f1_counts_unextracted_answers_as_false_negatives():
    correct = np.array([1, 1, 0, 0, 0], dtype=bool)
    extracted = np.array([1, 1, 1, 0, 0], dtype=bool)
    # TP = 2, FP = 1, FN = 2: F1 = 4 / 7, which is 2·acc/(1+acc) for acc = 2/5.
    assert paper_f1(correct, extracted) == pytest.approx(4 / 7)
    assert paper_f1(correct, extracted) == pytest.approx(f1_from_accuracy(0.4))
    with pytest.raises(ValueError, match="correct but nothing was extracted"):
        paper_f1(correct, np.zeros(5, dtype=bool))


# ---------------------------------------------------------------------------------------------------------------
# McNemar and multiple testing


@pytest.mark.parametrize(
    ("table", "method"),
    [
        ((600, 7, 3, 709), "exact"),
        ((500, 15, 9, 795), "exact"),
        ((560, 80, 40, 639), "chi2"),
        ((400, 30, 30, 859), "chi2"),
    ],
)
def test_mcnemar_matches_statsmodels(table, method):
    both, b, c, neither = table
    first, second = paired(*table)
    rng = np.random.default_rng(0)
    order = rng.permutation(first.size)  # question order must not matter
    result = mcnemar_test(first[order], second[order], names=("x", "y"))
    expected = mcnemar([[both, b], [c, neither]], exact=method == "exact", correction=True)
    assert (result.both, result.b, result.c, result.neither) == table
    assert result.method == method
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    if method == "chi2":
        assert result.statistic == pytest.approx((abs(b - c) - 1) ** 2 / (b + c))


def test_mcnemar_threshold_is_configurable_and_no_discordance_is_exact():
    first, second = paired(600, 20, 12, 687)  # 32 discordant pairs
    assert mcnemar_test(first, second).method == "chi2"
    assert mcnemar_test(first, second, exact_threshold=40).method == "exact"
    same = mcnemar_test(first, first, exact_threshold=0)
    assert (same.b, same.c, same.method, same.p_value) == (0, 0, "exact", 1.0)


def test_bonferroni_and_holm_decisions_by_hand():
    p = [0.01, 0.02, 0.03, 0.04, 0.005]
    # Bonferroni: reject p ≤ 0.05/5 = 0.01 → 0.01 and 0.005.
    # Holm: sorted 0.005 ≤ 0.05/5 reject; 0.01 ≤ 0.05/4 reject; 0.02 > 0.05/3 stop → the same two.
    bonferroni, holm = adjust_pvalues(p, "bonferroni"), adjust_pvalues(p, "holm")
    assert bonferroni.reject == (True, False, False, False, True)
    assert holm.reject == (True, False, False, False, True)
    assert bonferroni.p_adjusted == pytest.approx([0.05, 0.1, 0.15, 0.2, 0.025])
    # Holm adjusted: running max of (m − rank + 1)·p in sorted order: 0.025, 0.04, 0.06, 0.06, 0.06.
    assert holm.p_adjusted == pytest.approx([0.04, 0.06, 0.06, 0.06, 0.025])

    p = [0.004, 0.011, 0.012, 0.02, 0.3]
    # Bonferroni rejects only 0.004 (< 0.01). Holm: 0.004·5 = 0.02, 0.011·4 = 0.044, 0.012·3 = 0.036,
    # 0.02·2 = 0.04 all ≤ 0.05 → four rejections; 0.3 stays.
    assert adjust_pvalues(p, "bonferroni").reject == (True, False, False, False, False)
    holm = adjust_pvalues(p, "holm")
    assert holm.reject == (True, True, True, True, False)
    assert holm.p_adjusted == pytest.approx([0.02, 0.044, 0.044, 0.044, 0.3])


def test_pairwise_table_covers_every_pair_and_applies_corrections():
    rng = np.random.default_rng(3)
    configs = {name: rng.random(N) < p for name, p in (("a", 0.40), ("b", 0.42), ("c", 0.60), ("d", 0.61))}
    table = pairwise_mcnemar(configs)
    assert [(r.test.first, r.test.second) for r in table.comparisons] == [
        ("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d")
    ]  # fmt: skip
    raw = [r.test.p_value for r in table.comparisons]
    assert [r.p_bonferroni for r in table.comparisons] == pytest.approx([min(1.0, 6 * p) for p in raw])
    assert [r.reject_holm for r in table.comparisons] == list(adjust_pvalues(raw, "holm").reject)
    decisions = {(r.test.first, r.test.second): r.reject_holm for r in table.comparisons}
    assert decisions[("a", "c")] and decisions[("b", "d")]  # a 20-point gap is significant
    matrix = table.p_matrix(list(configs), "raw")
    assert matrix[0, 2] == matrix[2, 0] == pytest.approx(raw[1])
    assert np.isnan(np.diag(matrix)).all()


# ---------------------------------------------------------------------------------------------------------------
# Bootstrap


def test_bootstrap_ci_of_870_of_1319_matches_the_paper():
    result = bootstrap_metrics(vector(870))
    assert result.accuracy.estimate == pytest.approx(870 / N)
    for interval in (result.accuracy.percentile, result.accuracy.bca):
        assert interval.low == pytest.approx(0.635, abs=0.005)
        assert interval.high == pytest.approx(0.686, abs=0.005)
    # F1 is a monotone map of accuracy here, so its percentile interval is the mapped accuracy interval.
    assert result.f1.estimate == pytest.approx(f1_from_accuracy(870 / N))
    assert result.f1.percentile.low == pytest.approx(f1_from_accuracy(result.accuracy.percentile.low))
    assert result.f1.percentile.high == pytest.approx(f1_from_accuracy(result.accuracy.percentile.high))
    assert result.accuracy.n_resamples == 10_000


def test_bootstrap_is_seeded_and_equals_scipy_on_the_raw_vector():
    data = vector(870)
    first, again = (
        bootstrap_metrics(data, n_resamples=3_000, seed=7),
        bootstrap_metrics(data, n_resamples=3_000, seed=7),
    )
    assert first == again
    assert bootstrap_metrics(data, n_resamples=3_000, seed=8).accuracy.percentile != first.accuracy.percentile
    # Resampling indices with the same seed is the same bootstrap as scipy's on the vector itself.
    for method, interval in (("percentile", first.accuracy.percentile), ("BCa", first.accuracy.bca)):
        direct = sps.bootstrap(
            (data.astype(float),), np.mean, n_resamples=3_000, method=method, rng=np.random.default_rng(7)
        )
        assert interval.low == pytest.approx(direct.confidence_interval.low)
        assert interval.high == pytest.approx(direct.confidence_interval.high)


def test_f1_interval_equals_scipy_paired_bootstrap_of_the_f1_definition():
    rng = np.random.default_rng(2)
    correct = rng.random(500) < 0.5
    extracted = correct | (rng.random(500) < 0.5)

    def f1(c, e, axis=-1):
        tp, fp, fn = (c & e).sum(axis), (e & ~c).sum(axis), (~e).sum(axis)
        return 2 * tp / (2 * tp + fp + fn)

    ours = bootstrap_metrics(correct, extracted, n_resamples=3_000, seed=4).f1
    assert ours.estimate == pytest.approx(paper_f1(correct, extracted))
    for method, interval in (("percentile", ours.percentile), ("BCa", ours.bca)):
        direct = sps.bootstrap(
            (correct, extracted), f1, paired=True, n_resamples=3_000, method=method, rng=np.random.default_rng(4)
        )
        assert (interval.low, interval.high) == pytest.approx(tuple(direct.confidence_interval))


def test_paired_difference_contains_truth_and_detects_a_clear_winner():
    rng = np.random.default_rng(11)
    better = rng.random(N) < 0.70
    worse = better & (rng.random(N) < 0.85)  # the same questions, minus about 15% of the right ones
    truth = better.mean() - worse.mean()
    result = paired_difference(better, worse, names=("better", "worse"))
    assert result.accuracy.estimate == pytest.approx(truth)
    assert result.accuracy.percentile.contains(truth) and result.accuracy.bca.contains(truth)
    assert result.accuracy.percentile.low > 0 and result.accuracy.bca.low > 0
    assert result.f1.percentile.low > 0

    # 30 questions flipped each way: equal accuracy, 60 discordant pairs, no winner.
    swapped = better.copy()
    swapped[np.flatnonzero(better)[:30]] = False
    swapped[np.flatnonzero(~better)[:30]] = True
    tie = paired_difference(better, swapped)
    assert tie.accuracy.estimate == 0.0
    assert tie.accuracy.percentile.contains(0.0) and tie.accuracy.bca.contains(0.0)
    assert tie.accuracy.percentile.high - tie.accuracy.percentile.low > 0.01
    assert paired_difference(better, better).accuracy.bca == paired_difference(better, better).accuracy.percentile


def test_summary_of_configurations():
    rng = np.random.default_rng(5)
    base = rng.random(N) < 0.45
    correctness = {"baseline": base, "top-5": base | (rng.random(N) < 0.35), "random": rng.random(N) < 0.03}
    extracted = {name: c | (rng.random(N) < 0.5) for name, c in correctness.items()}
    summary = summarize_configurations(correctness, extracted, n_resamples=2_000, seed=1)
    assert summary.reference == "top-5"
    assert [d.first for d in summary.differences] == ["baseline", "random"]
    assert all(d.second == "top-5" and d.accuracy.percentile.high < 0 for d in summary.differences)
    alone = bootstrap_metrics(correctness["baseline"], extracted["baseline"], n_resamples=2_000, seed=1)
    assert summary.metric("baseline").accuracy == alone.accuracy  # same seed → same resamples
    assert summary.metric("random").f1.estimate == pytest.approx(paper_f1(correctness["random"], extracted["random"]))
    assert len(summary.mcnemar.comparisons) == 3
    assert json.loads(json.dumps(summary.to_dict()))["metrics"][0]["accuracy"]["percentile"]["low"] > 0
    with pytest.raises(ValueError, match="different numbers of questions"):
        summarize_configurations({"a": base, "b": base[:-1]})


# ---------------------------------------------------------------------------------------------------------------
# Seeds, strict versus flexible, reward hacking, answer shape


def test_seed_statistics():
    result = seed_statistics({0: 0.78, 1: 0.79, 2: 0.785})
    assert result.mean == pytest.approx(0.785)
    assert result.std == pytest.approx(0.005)  # ddof = 1: sqrt((0.005² + 0.005² + 0) / 2)
    assert (result.min, result.max, result.range) == pytest.approx((0.78, 0.79, 0.01))
    assert seed_statistics([0.5]).std is None


def test_strict_versus_flexible_from_parquet(tmp_path):
    rows = [
        {"index": 0, "completion": "2+2=4\n#### 4", "correct_strict": True, "correct_flexible": True},
        {"index": 1, "completion": "so it is 7", "correct_strict": False, "correct_flexible": True},
        {"index": 2, "completion": "answer: 9", "correct_strict": False, "correct_flexible": True},
        {"index": 3, "completion": "#### 5", "correct_strict": False, "correct_flexible": False},
    ]
    trial = tmp_path / "trial"
    io.write_parquet(trial / "test.parquet", rows)
    gap = format_gap(trial, "top-5")
    assert (gap.strict_correct, gap.flexible_correct, gap.format_errors) == (1, 3, 2)
    assert (gap.strict_accuracy, gap.flexible_accuracy, gap.gap) == pytest.approx((0.25, 0.75, 0.5))
    assert gap.format_share_of_errors == pytest.approx(2 / 3)  # two of the three strict errors are format
    assert [g.name for g in format_gaps({"a": trial / "test.parquet", "b": rows})] == ["a", "b"]
    io.write_parquet(trial / "selection.parquet", rows)
    with pytest.raises(ValueError, match="exactly one"):
        format_gap(trial)  # which split is meant must not be guessed


def test_reward_hacking_flagged_only_when_reward_rises_and_accuracy_falls():
    steps = np.arange(10, 210, 10)
    rising = 0.2 + 0.003 * steps + 0.01 * np.sin(steps)
    curve = [
        {"step": int(s), "rewards/format/mean": float(r), "rewards/flat/mean": 0.5}
        for s, r in zip(steps, rising, strict=True)
    ]
    falling = {50: 0.40, 100: 0.37, 150: 0.33, 200: 0.30}
    checks = {c.reward: c for c in reward_hacking_audit(curve, falling)}
    assert checks["format"].flagged and not checks["flat"].flagged
    assert checks["format"].reward_slope == pytest.approx(0.003, abs=2e-4)
    assert checks["format"].accuracy_slope == pytest.approx(
        np.polyfit([50, 100, 150, 200], [0.4, 0.37, 0.33, 0.3], 1)[0]
    )
    improving = {50: 0.30, 100: 0.33, 150: 0.37, 200: 0.40}
    assert not any(c.flagged for c in reward_hacking_audit(curve, improving))
    assert not reward_hacking_audit(curve, falling, ["format"], min_accuracy_drop=0.5)[0].flagged


def test_answer_shape_split_by_correctness():
    records = [
        {
            "completion": "Step 1: 3*4=12\n- add 2\n2. total 14\nThe answer is 14",
            "completion_tokens": 20,
            "correct": True,
        },
        {"completion": "14", "completion_tokens": 2, "correct": False},
        {"completion": "", "completion_tokens": 1, "correct": False},
    ]
    shape = answer_shape(records, "x")
    assert (shape.correct.n, shape.correct.mean_lines, shape.correct.mean_step_lines) == (1, 4.0, 3.0)
    assert shape.wrong.n == 2 and shape.wrong.mean_tokens == pytest.approx(1.5)
    assert shape.wrong.mean_step_lines == pytest.approx(0.5)  # "14" starts with a number
    assert shape.wrong.mean_lines == pytest.approx(0.5)  # the empty completion has no lines


# ---------------------------------------------------------------------------------------------------------------
# The paper's McNemar (analysis.mcnemar: paper), families, pairing by question ids, published figures


def _reference_mcnemar(b: int, c: int) -> tuple[float, float]:
    """The reference's formula, written out: continuity-corrected chi-square, p from chi2(1); p = 1 without b + c."""
    import math

    if b + c == 0:
        return 0.0, 1.0
    chi2 = (abs(b - c) - 1) ** 2 / (b + c)
    return chi2, math.erfc(math.sqrt(chi2 / 2))


@pytest.mark.parametrize(("both", "b", "c", "neither"), [(800, 40, 25, 454), (700, 3, 9, 607), (500, 0, 0, 819)])
def test_paper_mode_is_the_reference_chi_square_for_every_pair(both, b, c, neither):
    from reward_search.analysis.stats import mcnemar_counts

    result = mcnemar_counts(both, b, c, neither, method="chi2")
    statistic, p = _reference_mcnemar(b, c)
    assert result.method == "chi2" and result.n == both + b + c + neither
    assert result.statistic == pytest.approx(statistic) and result.p_value == pytest.approx(p)
    if 0 < b + c < 25:  # the project's mode tests these few discordant pairs exactly instead
        assert mcnemar_counts(both, b, c, neither).method == "exact"


def test_paper_family_is_the_ensembles_with_bonferroni():
    rng = np.random.default_rng(3)
    names = ["top5", "top5_full", "top3", "top7", "top10", "diverse", "correctness"]
    correctness = {name: rng.random(N) < 0.6 for name in names}
    extra = {"baseline": rng.random(N) < 0.45, "random": rng.random(N) < 0.05}
    summary = summarize_configurations(
        {**correctness, **extra}, n_resamples=200, family=names, mcnemar="paper", exact_threshold=25
    )
    table = summary.mcnemar
    assert len(table.comparisons) == 21 and table.mode == "paper" and table.correction == "bonferroni"
    assert {r.test.method for r in table.comparisons} == {"chi2"}
    assert not {"baseline", "random"} & {n for r in table.comparisons for n in (r.test.first, r.test.second)}
    assert set(summary.names) == set(names) | set(extra)  # the CIs still cover every configuration
    for row in table.comparisons:
        assert row.p_bonferroni == pytest.approx(min(1.0, 21 * row.test.p_value))
    full = summarize_configurations({**correctness, **extra}, n_resamples=200)
    assert len(full.mcnemar.comparisons) == 36 and full.mcnemar.correction == "holm"
    with pytest.raises(ValueError, match="unknown configurations"):
        summarize_configurations(correctness, n_resamples=200, family=["top5", "nope"])


def test_published_best_ensemble_beats_baseline_for_every_consistent_table():
    """The paper gives 870/1319 (best ensemble) and F1 0.609 (baseline, 577/1319) but no discordant counts. Every
    2x2 table with those margins has b - c = 293; the weakest case (most discordance) is still far below the
    Bonferroni threshold of the paper's 21 pairs, in the reference's test and in the exact one."""
    from reward_search.analysis.paper import PAPER
    from reward_search.analysis.stats import mcnemar_counts

    best, baseline = 870, round(accuracy_from_f1(PAPER.baseline_f1) * N)
    assert baseline == 577 and f1_from_accuracy(best / N) == pytest.approx(PAPER.best_ensemble_f1, abs=5e-4)
    c_max = min(N - best, baseline)  # only the baseline right: at most its correct answers, at most best's wrong ones
    for c in (0, c_max // 2, c_max):
        b = best - baseline + c
        both = best - b
        neither = N - both - b - c
        assert min(both, neither) >= 0
        for method in ("chi2", "auto"):
            result = mcnemar_counts(both, b, c, neither, method=method)
            assert result.p_value < 0.05 / 21 * 1e-10


def test_f1_of_each_published_accuracy_and_counts_behind_each_f1():
    from reward_search.analysis.paper import PAPER

    assert f1_from_accuracy(PAPER.best_ensemble_accuracy) == pytest.approx(PAPER.best_ensemble_f1, abs=5e-4)
    low, high = (f1_from_accuracy(a) for a in PAPER.best_ensemble_accuracy_ci)
    assert (round(low, 3), round(high, 3)) == (0.777, 0.814)  # narrower than the published F1 CI [0.756, 0.832]
    for f1 in (PAPER.baseline_f1, PAPER.random_control_f1, PAPER.best_ensemble_f1, PAPER.best_single_f1):
        count = round(accuracy_from_f1(f1) * N)  # some whole number of the 1,319 questions gives each figure
        assert paper_f1(vector(count)) == pytest.approx(f1, abs=5e-4)


def test_records_pair_by_question_id_not_by_position():
    import pandas as pd

    from reward_search.analysis.vectors import align_by_ids

    a = pd.DataFrame({"index": [0, 1, 2, 3], "correct": [True, False, True, False]})
    b = pd.DataFrame({"index": [3, 2, 1, 0], "correct": [True, True, False, False]})  # another order
    aligned = align_by_ids({"a": a, "b": b})
    assert aligned["b"]["index"].tolist() == [0, 1, 2, 3]
    assert aligned["b"]["correct"].tolist() == [False, False, True, True]
    result = mcnemar_test(aligned["a"]["correct"], aligned["b"]["correct"])
    assert (result.both, result.b, result.c, result.neither) == (1, 1, 1, 1)
    with pytest.raises(ValueError, match="'a' and 'c' cover different questions"):
        align_by_ids({"a": a, "c": pd.DataFrame({"index": [0, 1, 2, 9], "correct": [True] * 4})})
    with pytest.raises(ValueError, match="repeat question ids"):
        align_by_ids({"a": a, "d": pd.DataFrame({"index": [0, 0, 1, 2], "correct": [True] * 4})})
    with pytest.raises(ValueError, match="no question-id column"):
        align_by_ids({"a": a, "e": pd.DataFrame({"correct": [True] * 4})})
