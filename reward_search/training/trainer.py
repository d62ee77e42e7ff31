"""TRL trainer assembly for one screening run: reward callables, the GRPO config, LoRA, callbacks, the prompt pool.

`build_session` returns a `GRPOTrainer` ready to train into a trial folder, with the reward callables (base rewards
in-process, candidates through the sandbox) and the curve recorder it reports to. Training, evaluation and the
trial's bookkeeping are `training/screening.py`'s.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reward_search.config import EvalConfig, ExperimentConfig
from reward_search.errors import UserError
from reward_search.task import Problem, Splits, Task, render_prompt
from reward_search.task.base_rewards import base_reward_funcs
from reward_search.training.reporting import LocalReporter, Reporter
from reward_search.training.spec import RewardSpec


def configure_threads() -> int:
    """torch threads = the CPUs Ray granted this trial (Ray sets OMP_NUM_THREADS=1 otherwise), else all cores."""
    import torch

    cpus = None
    try:
        import ray

        if ray.is_initialized():
            cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except ImportError:
        cpus = None
    threads = max(1, int(cpus)) if cpus else (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    return threads


def eval_config(config: ExperimentConfig) -> EvalConfig:
    """How a screening run evaluates its adapter: greedy on the selection split, strict and flexible extraction."""
    return EvalConfig(
        split=config.training.selection_split,
        batch_size=config.training.eval_batch_size,
        max_new_tokens=config.training.eval_max_new_tokens,
        primary_mode="strict",
        modes=("strict", "flexible"),
    )


def _training_dataset(task: Task, problems: Sequence[Problem], tokenizer: Any, max_prompt_length: int) -> Any:
    """The GRPO prompt pool as a `datasets.Dataset` (chat prompts + gold answers), over-long prompts dropped."""
    from datasets import Dataset

    rows = []
    for problem in problems:
        messages = task.messages(problem.question)
        length = len(tokenizer(render_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"])
        if length <= max_prompt_length:
            rows.append({"prompt": messages, "answer": problem.answer})
    if not rows:
        raise UserError(f"training.max_prompt_length: {max_prompt_length} tokens leaves no training prompts")
    return Dataset.from_list(rows)


def build_reward_funcs(config: ExperimentConfig, spec: RewardSpec) -> tuple[list[Callable[..., Any]], list[float]]:
    """TRL reward callables (base rewards in-process, candidates through the sandbox) and their weights."""
    from reward_search.candidates.rewards import SandboxedReward
    from reward_search.training.member_rewards import ZeroOnFailureReward

    wrapper = ZeroOnFailureReward if config.training.member_failure == "zero" else SandboxedReward
    funcs: list[Callable[..., Any]] = []
    weights: list[float] = []
    if spec.base_rewards:
        for name, func in base_reward_funcs(config.training.graded_base_reward).items():
            funcs.append(func)
            weights.append(config.training.base_weights.get(name, 1.0))
    for candidate, weight in zip(spec.candidates, spec.candidate_weights, strict=True):
        funcs.append(wrapper(candidate, config.candidates))
        weights.append(weight)
    if not funcs:
        raise UserError("the reward spec has no rewards: base rewards are off and no candidate was given")
    return funcs, weights


def _grpo_args(config: ExperimentConfig, out: Path, device: str, weights: list[float]) -> Any:
    """TRL's GRPOConfig from `training.*`: checkpoints under `out/checkpoints`, TRL's own logging and bars off."""
    from trl import GRPOConfig

    from reward_search.training.generation import plan_for
    from reward_search.training.placement import world_size

    t = config.training
    bf16 = t.precision == "bf16" or (t.precision == "auto" and device == "cuda")
    workers = world_size()  # a multi-worker trial splits the same batch over its workers (DDP)
    return GRPOConfig(
        output_dir=str(out / "checkpoints"),
        max_steps=t.steps,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=float(t.warmup_ratio),  # a float in [0, 1) is a ratio of max_steps
        weight_decay=t.weight_decay,
        optim=t.optimizer,
        max_grad_norm=t.max_grad_norm,
        per_device_train_batch_size=t.prompts_per_step * t.generations_per_prompt // workers,
        num_generations=t.generations_per_prompt,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        max_completion_length=t.max_completion_length,
        temperature=t.temperature,
        top_p=t.top_p,
        beta=t.beta,
        loss_type=t.loss_type,
        scale_rewards=t.scale_rewards,
        multi_objective_aggregation=t.aggregation,
        reward_weights=weights,
        seed=config.run.seed,
        data_seed=config.run.seed,
        bf16=bf16,
        fp16=False,
        use_cpu=device == "cpu",
        gradient_checkpointing=t.gradient_checkpointing,
        **plan_for(t, config.search, device).grpo_options,  # hf | fast | vllm (training/generation.py)
        logging_steps=1,
        save_strategy="steps",
        save_steps=t.report_every,
        save_total_limit=config.run.keep_checkpoints,
        save_only_model=False,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def restore_finished(trainer: Any, checkpoint: Path) -> None:
    """Load a checkpoint taken at the last step (LoRA weights, trainer state) without training.

    `Trainer.train(resume_from_checkpoint=...)` at `global_step == max_steps` runs one more step mid-epoch (its stop
    check follows a step), so a trial killed after its final checkpoint would train `steps + 1`; this loads what
    `train` would have loaded and stops there, so the adapter is the one the unkilled trial evaluated.
    """
    from transformers.trainer_callback import TrainerState

    trainer._load_from_checkpoint(str(checkpoint))
    trainer.state = TrainerState.load_from_json(str(checkpoint / "trainer_state.json"))


@dataclass
class ScreeningSession:
    """Everything one run trains with: the trainer, its reward callables and the curve recorder."""

    trainer: Any
    funcs: list[Callable[..., Any]]
    recorder: Any
    loaded: Any

    def close(self) -> None:
        for func in self.funcs:
            if hasattr(func, "close"):
                func.close()


def build_session(
    config: ExperimentConfig,
    spec: RewardSpec,
    task: Task,
    splits: Splits,
    out: Path,
    reporter: Reporter | None = None,
    progress: bool = False,
    resume_step: int = 0,
) -> ScreeningSession:
    """A GRPOTrainer (peft LoRA, base + sandboxed candidate rewards, callbacks) ready to train into `out`."""
    from reward_search.training.curves import CurveRecorder
    from reward_search.training.models import load_model
    from reward_search.training.placement import process_rank, trial_placement

    funcs, weights = build_reward_funcs(config, spec)
    placement = trial_placement(config.model.device)  # the GPUs Ray granted, with a memory cap for a share
    loaded = load_model(
        config.model.spec,
        config.model.dtype,
        placement.device,
        seed=config.run.seed,
        quantization=config.model.quantization,
    )
    dataset = _training_dataset(task, splits.train, loaded.tokenizer, config.training.max_prompt_length)
    t = config.training
    curves = out / "curves.parquet" if process_rank() == 0 else Path(tempfile.mkdtemp()) / "curves.parquet"
    recorder = CurveRecorder(curves, t.prompts_per_step * t.generations_per_prompt, resume_step)
    trainer = _make_trainer(
        config, loaded, funcs, weights, dataset, out, recorder, reporter or LocalReporter(), splits, task, progress
    )
    return ScreeningSession(trainer=trainer, funcs=funcs, recorder=recorder, loaded=loaded)


def _make_trainer(
    config: ExperimentConfig,
    loaded: Any,
    funcs: list[Callable[..., Any]],
    weights: list[float],
    dataset: Any,
    out: Path,
    recorder: Any,
    reporter: Reporter,
    splits: Splits,
    task: Task,
    progress: bool,
) -> Any:
    """The GRPOTrainer with LoRA and the callbacks: learning signal, curves, divergence guard, periodic dev reports."""
    from peft import LoraConfig
    from transformers import PrinterCallback, ProgressCallback
    from trl import GRPOTrainer

    from reward_search.training.callbacks import IntermediateReport, StepProgress

    t = config.training
    lora = LoraConfig(
        r=t.lora.r,
        lora_alpha=t.lora.alpha,
        lora_dropout=t.lora.dropout,
        target_modules=list(t.lora.target_modules),
        task_type="CAUSAL_LM",
    )
    model = loaded.model
    model.train()
    report_problems = splits.dev[: t.report_eval_size]
    from reward_search.training.curves import DivergenceGuard
    from reward_search.training.signal import LearningSignalLogger

    signal_logger = LearningSignalLogger()  # before the recorder: it adds |advantage| and the LoRA B norm to logs
    callbacks = [
        signal_logger,
        recorder,
        DivergenceGuard(),
        IntermediateReport(reporter, task, report_problems, loaded, eval_config(config), recorder),
    ]
    if progress:
        callbacks.append(StepProgress(t.steps))
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=funcs,
        args=_grpo_args(config, out, loaded.device, weights),
        train_dataset=dataset,
        processing_class=loaded.tokenizer,
        peft_config=lora,
        callbacks=callbacks,
    )
    for noisy in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(noisy)
    signal_logger.attach(trainer)
    from reward_search.training.generation import plan_for, prepare_trainer

    prepare_trainer(trainer, plan_for(t, config.search, loaded.device))  # the compile switch TRL turns off
    return trainer
