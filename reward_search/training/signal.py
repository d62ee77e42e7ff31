"""Did a screening run learn anything? Per-step learning-signal logs and a pure verdict over a finished run.

GRPO learns only from groups whose rewards differ: a group where every completion scored the same has zero
advantage, so a step where every group tied gives zero loss and zero gradient, and the LoRA adapter (B starts at
zero) never leaves its initialisation. `LearningSignalLogger` adds two columns to each logged step (the mean
absolute advantage of the step's completions and the norm of the LoRA B matrices); `learning_signal` turns a
run's curve rows into the record the leaderboard shows and the feedback explains.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from transformers import TrainerCallback

ADVANTAGE_KEY = "advantages/abs_mean"
LORA_B_KEY = "adapter/lora_b_norm"
# A step is "tied" when at least this share of its groups had zero reward variance (TRL's frac_reward_zero_std).
TIED_STEP_SHARE = 0.999
# The run has no signal when more than this share of its steps were tied ...
MAX_TIED_STEPS = 0.5
# ... or when the adapter's update stayed below this norm (LoRA B is initialised to exactly zero).
MIN_ADAPTER_NORM = 1e-6

NO_VARIANCE_REASON = "no signal: your reward gave every completion in a group the same score"
NO_UPDATE_REASON = "no signal: the adapter never moved"


def lora_b_norm(model: Any) -> float:
    """The Frobenius norm over every LoRA B matrix of `model` (0.0 right after initialisation)."""
    total = 0.0
    for name, param in model.named_parameters():
        if "lora_B" in name:
            total += float(param.detach().float().pow(2).sum())
    return math.sqrt(total)


class LearningSignalLogger(TrainerCallback):
    """Adds the step's mean |advantage| and the LoRA B norm to each logged step (place it before the recorder).

    The advantages are read from the batch TRL builds in `_generate_and_score_completions`, by wrapping that
    method on the trainer instance; the per-step logs dict is shared by every callback, so the curve recorder
    that runs next stores both columns with the rest.
    """

    def __init__(self) -> None:
        self._advantages: list[float] = []
        self._last_advantage: float | None = None
        self._norm: float | None = None

    def attach(self, trainer: Any) -> None:
        """Wrap the trainer's rollout method to see each batch's advantages (a no-op when TRL lacks it)."""
        original = getattr(trainer, "_generate_and_score_completions", None)
        if original is None:
            return

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            output = original(*args, **kwargs)
            advantages = output.get("advantages") if isinstance(output, Mapping) else None
            if advantages is not None:
                self._advantages.append(float(advantages.detach().abs().float().mean()))
            return output

        trainer._generate_and_score_completions = wrapped

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if model is not None:
            self._norm = lora_b_norm(model)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs is None or "reward" not in logs:
            return
        if self._advantages:
            self._last_advantage = sum(self._advantages) / len(self._advantages)
            self._advantages = []
        if self._last_advantage is not None:
            logs[ADVANTAGE_KEY] = self._last_advantage
        if self._norm is not None:
            logs[LORA_B_KEY] = self._norm


def _finite(values: Sequence[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]


def learning_signal(rows: Sequence[Mapping[str, Any]], own: Sequence[str] = ()) -> dict[str, Any]:
    """The run's learning signal from its curve rows, with `no_signal` set to the reason when it learned nothing.

    `tied_step_share`: the share of steps where every group's rewards were equal (zero gradient);
    `zero_std_share`: the mean share of such groups per step; `mean_abs_advantage`; `adapter_norm`: the LoRA B
    norm after the last step; `own_flat_step_share`: the share of steps where the candidate rewards `own` gave every
    completion of the batch the same score (they taught nothing, whatever the base rewards did).
    """
    zero_std = _finite([r.get("frac_reward_zero_std") for r in rows])
    advantages = _finite([r.get(ADVANTAGE_KEY) for r in rows])
    norms = _finite([r.get(LORA_B_KEY) for r in rows])
    signal: dict[str, Any] = {
        "steps": len(rows),
        "tied_step_share": sum(v >= TIED_STEP_SHARE for v in zero_std) / len(zero_std) if zero_std else None,
        "zero_std_share": sum(zero_std) / len(zero_std) if zero_std else None,
        "mean_abs_advantage": sum(advantages) / len(advantages) if advantages else None,
        "adapter_norm": norms[-1] if norms else None,
        "own_flat_step_share": _flat_share(rows, own),
    }
    signal["no_signal"] = no_signal_reason(signal)
    return signal


def _flat_share(rows: Sequence[Mapping[str, Any]], own: Sequence[str]) -> float | None:
    """The share of steps where every reward in `own` had zero spread over the batch (TRL's rewards/<name>/std)."""
    if not own:
        return None
    flat = []
    for row in rows:
        stds = _finite([row.get(f"rewards/{name}/std") for name in own])
        if len(stds) == len(own):
            flat.append(all(v <= 1e-12 for v in stds))
    return sum(flat) / len(flat) if flat else None


def no_signal_reason(signal: Mapping[str, Any]) -> str | None:
    """Why a run learned nothing from its reward (tied groups in most steps, a candidate reward flat in most steps,
    or an adapter that never moved), or None."""
    tied = signal.get("tied_step_share")
    if tied is not None and tied > MAX_TIED_STEPS:
        return f"{NO_VARIANCE_REASON} in {tied:.0%} of the training steps, so GRPO had nothing to learn from"
    flat = signal.get("own_flat_step_share")
    if flat is not None and flat > MAX_TIED_STEPS:
        return f"{NO_VARIANCE_REASON} in {flat:.0%} of the training steps: only the base rewards taught this run"
    norm = signal.get("adapter_norm")
    if norm is not None and norm < MIN_ADAPTER_NORM:
        return f"{NO_UPDATE_REASON} (LoRA B norm {norm:.1e})"
    return None
