"""GRPO advantages under the two multi-reward aggregations, as pure functions (the definition we test TRL against).

* ``sum_then_normalize`` (the paper, TRL's default): r = Σ_k w_k·r_k, then within each group of generations
  A = (r − mean_group(r)) / (std_group(r) + ε) (std scaling per `scale_rewards`).
* ``normalize_then_sum`` (GDPO): each reward is normalised within its group first,
  ř_k = (r_k − mean_group(r_k)) / (std_group(r_k) + ε); r = Σ_k w_k·ř_k; then A = (r − mean(r)) / (std(r) + ε) over
  the batch. One reward with a large scale can then no longer drown the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EPSILON = 1e-4


def _group_view(values: np.ndarray, group_size: int) -> np.ndarray:
    if values.shape[0] % group_size:
        raise ValueError(f"{values.shape[0]} completions do not divide into groups of {group_size}")
    return values.reshape(-1, group_size, *values.shape[1:])


def advantages(
    rewards: Sequence[Sequence[float]],
    weights: Sequence[float],
    group_size: int,
    aggregation: str = "sum_then_normalize",
    scale_rewards: str = "group",
) -> np.ndarray:
    """Advantages for rewards shaped (completions, reward functions); completions are grouped consecutively."""
    matrix = np.asarray(rewards, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if aggregation == "sum_then_normalize":
        total = matrix @ w
        grouped = _group_view(total, group_size)
        mean = grouped.mean(axis=1, keepdims=True)
        centred = (grouped - mean).reshape(-1)
        if scale_rewards == "group":
            std = np.repeat(grouped.std(axis=1, ddof=1), group_size)
            return centred / (std + EPSILON)
        if scale_rewards == "batch":
            return centred / (total.std(ddof=1) + EPSILON)
        return centred
    if aggregation == "normalize_then_sum":
        grouped = _group_view(matrix, group_size)
        mean = grouped.mean(axis=1, keepdims=True)
        std = grouped.std(axis=1, ddof=1, keepdims=True)
        normalised = ((grouped - mean) / (std + EPSILON)).reshape(-1, matrix.shape[1])
        total = normalised @ w
        return (total - total.mean()) / (total.std(ddof=1) + EPSILON)
    raise ValueError(f"unknown aggregation {aggregation!r}")
