"""Per-step training curves: a TRL callback that records every logged step to Parquet, and a pure summary."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from reward_search import io
from reward_search.task.base_rewards import base_reward_funcs
from reward_search.training.signal import learning_signal

# Logged once at the end of training, not per step.
_SUMMARY_KEYS = {"train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss", "total_flos"}


class TrainingDiverged(RuntimeError):
    """The loss or the reward became NaN/inf: the trial fails with this reason."""


class CurveRecorder(TrainerCallback):
    """Collects each step's logged metrics (rewards per function, zero-std share, lengths, KL, entropy, timing).

    Rows are rewritten to `path` atomically after each step, so a killed run keeps its curve up to its last step;
    on resume, rows after the checkpoint's step are dropped before training continues.
    """

    def __init__(self, path: Path, batch_completions: int, resume_step: int = 0) -> None:
        self.path = path
        self.batch_completions = batch_completions
        self.rows: list[dict[str, Any]] = []
        if resume_step and path.is_file():
            import pyarrow.parquet as pq

            self.rows = [r for r in pq.read_table(path).to_pylist() if r["step"] <= resume_step]

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **kwargs: Any):
        if not logs or _SUMMARY_KEYS & set(logs) or "reward" not in logs:
            return
        row: dict[str, Any] = {"step": int(state.global_step)}
        for key, value in logs.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                row[key] = float(value)
        row["completion_tokens"] = row.get("completions/mean_length", 0.0) * self.batch_completions
        self.rows = [r for r in self.rows if r["step"] != row["step"]] + [row]
        io.write_parquet(self.path, _aligned(self.rows))
        for key in ("loss", "reward"):
            value = row.get(key)
            if value is not None and not math.isfinite(value):
                raise TrainingDiverged(f"{key} became {value} at step {row['step']}")


class DivergenceGuard(TrainerCallback):
    """Fails the run when a trainable (LoRA) weight stops being finite: the next generation would crash anyway."""

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if model is None:
            return
        import torch

        for name, param in model.named_parameters():
            if param.requires_grad and not bool(torch.isfinite(param).all()):
                raise TrainingDiverged(f"weight {name} became non-finite at step {state.global_step}")


def _aligned(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows with the same columns (missing values as None), so Parquet gets one schema."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return [{c: row.get(c) for c in columns} for row in rows]


def _window_mean(values: Sequence[float], first: bool) -> float | None:
    clean = [v for v in values if v is not None and math.isfinite(v)]
    if not clean:
        return None
    width = max(1, len(clean) // 10)
    chunk = clean[:width] if first else clean[-width:]
    return sum(chunk) / len(chunk)


def summarize(rows: Sequence[Mapping[str, Any]], reward_names: Sequence[str]) -> dict[str, Any]:
    """Start → end (mean of the first and last tenth of steps) for each reward and the run's health signals,
    and the run's learning signal (`signal.learning_signal`: did any group's rewards differ, did the adapter move)."""

    def column(name: str) -> list[float]:
        return [r.get(name) for r in rows]  # type: ignore[misc]

    summary: dict[str, Any] = {"steps": len(rows)}
    for name in reward_names:
        values = column(f"rewards/{name}/mean")
        summary[f"reward/{name}"] = {"start": _window_mean(values, True), "end": _window_mean(values, False)}
    for key, label in (
        ("reward", "total_reward"),
        ("frac_reward_zero_std", "zero_std_share"),
        ("completions/mean_length", "completion_length"),
        ("completions/clipped_ratio", "clipped_ratio"),
        ("kl", "kl"),
        ("entropy", "entropy"),
    ):
        values = column(key)
        if any(v is not None for v in values):
            summary[label] = {"start": _window_mean(values, True), "end": _window_mean(values, False)}
    step_times = [v for v in column("step_time") if v is not None]
    summary["mean_step_seconds"] = sum(step_times) / len(step_times) if step_times else None
    summary["completion_tokens"] = sum(r.get("completion_tokens") or 0.0 for r in rows)
    summary["signal"] = learning_signal(rows, [n for n in reward_names if n not in base_reward_funcs(True)])
    return summary
