"""Trainer callbacks for screening runs: intermediate reports with checkpoints, and a quiet progress bar."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from reward_search.config import EvalConfig
from reward_search.task.base import Problem, Task
from reward_search.training.reporting import Reporter


class IntermediateReport(TrainerCallback):
    """After each checkpoint: accuracy on a small dev subset and the latest curve values, reported together with
    the checkpoint folder (Tune's ASHA can stop weak candidates on this; a restarted trial resumes from it)."""

    def __init__(
        self,
        reporter: Reporter,
        task: Task,
        problems: Sequence[Problem],
        loaded: Any,
        eval_config: EvalConfig,
        recorder: Any,
    ) -> None:
        self.reporter, self.task, self.problems = reporter, task, problems
        self.loaded, self.eval_config, self.recorder = loaded, eval_config, recorder

    def on_save(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        from reward_search.training.evaluation import evaluate
        from reward_search.training.models import LoadedModel

        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        metrics: dict[str, Any] = {"step": int(state.global_step), "final": False}
        if self.problems and model is not None:
            padding_side = self.loaded.tokenizer.padding_side
            model.eval()
            try:
                policy = LoadedModel(
                    model, self.loaded.tokenizer, self.loaded.spec, self.loaded.source, self.loaded.device
                )
                result = evaluate(policy, self.task, self.problems, self.eval_config, show_progress=False)
            finally:
                model.train()
                self.loaded.tokenizer.padding_side = padding_side
            metrics["dev_accuracy"] = result.metrics.accuracy
            metrics["dev_extraction_rate"] = result.metrics.extraction_rate
            if result.info.get("gold_logprob") is not None:  # the graded signal moves before accuracy does
                metrics["dev_gold_logprob"] = result.info["gold_logprob"]
        if self.recorder.rows:
            latest = self.recorder.rows[-1]
            for key, value in latest.items():
                if key.startswith("rewards/") or key in ("reward", "frac_reward_zero_std", "completions/mean_length"):
                    if value is not None and math.isfinite(value):
                        metrics[key] = value
        self.reporter.report(metrics, checkpoint if checkpoint.is_dir() else None)
        from reward_search.ops.killpoint import kill_point  # a test hook, inert unless its variable is set

        kill_point("last-step" if state.global_step >= args.max_steps else "step")


class StepProgress(TrainerCallback):
    """A tqdm bar over training steps showing the total reward, instead of TRL's per-step log dumps."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bar: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.total, initial=state.global_step, desc="GRPO steps", unit="step", dynamic_ncols=True)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if self.bar is None or not logs or "reward" not in logs:
            return
        self.bar.n = state.global_step
        self.bar.set_postfix(reward=f"{logs['reward']:.3f}", zero_std=f"{logs.get('frac_reward_zero_std', 0):.2f}")

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.n = state.global_step
            self.bar.close()
            self.bar = None
