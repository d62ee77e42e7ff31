"""One screening run: GRPO + LoRA (TRL, peft) under one reward spec, then the adapter scored on the selection split.

`run_screening` is the unit of work the search runs as a Ray Tune trial, and it also runs on its own
(`reward-search screen`). A trial folder holds `trial.json` (the key and what it hashes), `curves.parquet`,
`checkpoints/`, `adapter/`, `selection.parquet` (and `test.parquet`), and `result.json`. A finished trial with the
same key is returned without training; an interrupted one resumes from its last complete checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from reward_search import io
from reward_search.config import EvalConfig, ExperimentConfig, to_plain
from reward_search.errors import UserError
from reward_search.task import Problem, Splits, Task, get_task, render_prompt
from reward_search.task.base_rewards import BASE_REWARDS
from reward_search.training.reporting import LocalReporter, Reporter
from reward_search.training.spec import RewardSpec, key_payload, reward_names, trial_key

# done: trained and evaluated; crashed: the candidate's fault; failed: infrastructure or divergence (retried);
# stopped: ended early by a Tune scheduler (resumable).
Status = Literal["done", "crashed", "failed", "stopped"]
CHECKPOINT_FILES = ("trainer_state.json", "adapter_model.safetensors", "adapter_config.json")


@dataclass
class TrialResult:
    """The outcome of one screening run; `metrics` are on the selection split (dev unless configured otherwise)."""

    key: str
    status: Status
    reward_spec: str
    reward_names: list[str]
    selection_split: str
    metrics: dict[str, Any] = field(default_factory=dict)
    test_metrics: dict[str, Any] | None = None
    curve_summary: dict[str, Any] = field(default_factory=dict)
    steps: int = 0
    resumed_from_step: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    tokens_generated: int = 0
    device: str = ""
    error: str | None = None
    candidate_failures: dict[str, float] = field(default_factory=dict)
    out_dir: str = ""
    cached: bool = False
    # The whole trial (load, train, evaluate) and the GPUs Ray granted it: GPU-hours = wall_seconds x gpus / 3600.
    wall_seconds: float = 0.0
    gpus: float = 0.0
    gpu_hours: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialResult:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


# --------------------------------------------------------------------------------------------------- helpers


def latest_checkpoint(checkpoints: Path) -> Path | None:
    """The newest checkpoint folder that was written completely (a kill can leave the newest one half-written)."""
    if not checkpoints.is_dir():
        return None
    found = []
    for folder in checkpoints.glob("checkpoint-*"):
        suffix = folder.name.removeprefix("checkpoint-")
        if suffix.isdigit() and all((folder / name).is_file() for name in CHECKPOINT_FILES):
            found.append((int(suffix), folder))
    return max(found)[1] if found else None


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
        for name, func in BASE_REWARDS.items():
            funcs.append(func)
            weights.append(config.training.base_weights.get(name, 1.0))
    for candidate, weight in zip(spec.candidates, spec.candidate_weights, strict=True):
        funcs.append(wrapper(candidate, config.candidates))
        weights.append(weight)
    if not funcs:
        raise UserError("the reward spec has no rewards: base rewards are off and no candidate was given")
    return funcs, weights


def _grpo_args(config: ExperimentConfig, out: Path, device: str, weights: list[float]) -> Any:
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


# --------------------------------------------------------------------------------------------------- the run


def _selection_problems(config: ExperimentConfig, splits: Splits) -> tuple[Problem, ...]:
    problems = splits.get(config.training.selection_split)
    if config.training.selection_size is not None:
        problems = problems[: config.training.selection_size]
    return problems


def _eval_config(config: ExperimentConfig) -> EvalConfig:
    return EvalConfig(
        split=config.training.selection_split,
        batch_size=config.training.eval_batch_size,
        max_new_tokens=config.training.eval_max_new_tokens,
        primary_mode="strict",
        modes=("strict", "flexible"),
    )


def _check_trial_folder(out: Path, key: str) -> TrialResult | None:
    """A cached result for `key`, or None; refuses a folder that belongs to a different trial."""
    marker = out / "trial.json"
    if marker.is_file():
        existing = json.loads(marker.read_text()).get("key")
        if existing != key:
            raise UserError(
                f"{out} holds a different trial (key {existing}, this run is {key}): any change trains afresh, so "
                "choose another output folder (the default one is derived from the key)"
            )
    result_file = out / "result.json"
    if result_file.is_file():
        result = TrialResult.from_dict(json.loads(result_file.read_text()))
        if result.key == key and result.status == "done":
            result.cached = True
            return result
    return None


def run_screening(
    config: ExperimentConfig,
    spec: RewardSpec,
    out_dir: str | Path | None = None,
    reporter: Reporter | None = None,
    progress: bool = True,
) -> TrialResult:
    """Train with GRPO + LoRA under `spec`, evaluate the adapter, and return (and write) the TrialResult.

    A candidate that keeps failing gives status `crashed`; a NaN loss or reward gives `failed`; both with the reason.
    Other errors (infrastructure) are raised so that a Tune trial can be retried; the checkpoints stay.
    """
    from reward_search.training.placement import process_rank

    wall_start, main = time.perf_counter(), process_rank() == 0  # only rank 0 of a multi-worker trial writes
    reporter = reporter or LocalReporter()
    task = get_task(config.data)
    splits = task.load_splits()
    key = trial_key(config, spec, splits.manifest)
    out = Path(out_dir) if out_dir else Path(config.run.storage_path) / config.run.name / "trials" / key
    out = out.expanduser().resolve()
    cached = _check_trial_folder(out, key)
    if cached is not None:
        reporter.report(_final_report(cached), None)
        return cached
    out.mkdir(parents=True, exist_ok=True)
    if main:
        io.write_json(
            out / "trial.json",
            {
                "key": key,
                "identity": key_payload(config, spec, splits.manifest),
                "spec": spec.to_dict(),
                "config": config.to_dict(),
                "data": to_plain(splits.manifest),
            },
        )
    names = reward_names(spec, list(BASE_REWARDS))
    result = TrialResult(
        key=key,
        status="done",
        reward_spec=spec.name,
        reward_names=names,
        selection_split=config.training.selection_split,
        out_dir=str(out),
    )
    try:
        _train_and_evaluate(config, spec, task, splits, out, reporter, progress, result)
    except SystemExit:  # Tune's report() ends a trial its scheduler stops early (ASHA) with SystemExit
        result.status, result.error = "stopped", f"stopped early by the Tune scheduler after step {result.steps}"
        raise
    except BaseException as exc:  # recorded, then re-raised so that Tune can retry an infrastructure failure
        result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
        io.write_text(out / ("error.log" if main else f"error-rank{process_rank()}.log"), traceback.format_exc())
        raise
    finally:
        _account(result, wall_start)
        if main:
            io.write_json(out / "result.json", result.to_dict())
    if main and result.status == "done":
        from reward_search.training.retention import prune_finished_trial

        prune_finished_trial(out, config.run)
    reporter.report(_final_report(result), None)  # after result.json: Tune may end the process on a final report
    return result


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


def _train_and_evaluate(
    config: ExperimentConfig,
    spec: RewardSpec,
    task: Task,
    splits: Splits,
    out: Path,
    reporter: Reporter,
    progress: bool,
    result: TrialResult,
) -> None:
    from reward_search.candidates.rewards import CandidateCrashed
    from reward_search.training.curves import TrainingDiverged, summarize
    from reward_search.training.placement import process_rank

    configure_threads()
    checkpoints = out / "checkpoints"
    checkpoints.mkdir(exist_ok=True)
    restored = reporter.restore(checkpoints)
    resume = restored or latest_checkpoint(checkpoints)
    result.resumed_from_step = _step(resume) if resume else 0

    session = build_session(config, spec, task, splits, out, reporter, progress, result.resumed_from_step)
    result.device = session.loaded.device
    trainer = session.trainer
    started = time.perf_counter()
    try:
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    except CandidateCrashed as exc:  # CandidateDrifted (a spot re-probe disagreed) carries status "failed"
        result.status, result.error = exc.status, str(exc)
    except TrainingDiverged as exc:
        result.status, result.error = "failed", f"training diverged: {exc}"
    finally:
        result.train_seconds = round(time.perf_counter() - started, 3)
        result.steps = int(trainer.state.global_step)
        result.candidate_failures = _sandbox_metrics(session.funcs)
        result.curve_summary = summarize(session.recorder.rows, result.reward_names)
        session.close()
    result.tokens_generated = int(result.curve_summary.get("completion_tokens") or 0)
    if result.status == "done" and process_rank() == 0:  # other workers of a multi-worker trial stop here
        tmp_adapter, adapter = out / ".adapter.tmp", out / "adapter"
        trainer.model.save_pretrained(str(tmp_adapter))
        shutil.rmtree(adapter, ignore_errors=True)
        os.replace(tmp_adapter, adapter)
        _final_evaluation(config, trainer, session.loaded, task, splits, out, result)


def _step(checkpoint: Path) -> int:
    return int(checkpoint.name.removeprefix("checkpoint-"))


def _account(result: TrialResult, wall_start: float) -> None:
    """The trial's wall time and GPU-hours: every second of it (load, train, evaluate) times the GPUs Ray granted."""
    from reward_search.training.placement import gpu_hours, granted_gpus

    granted = granted_gpus()
    result.wall_seconds = round(time.perf_counter() - wall_start, 3)
    result.gpus = granted[0] if granted else 0.0
    result.gpu_hours = gpu_hours(result.wall_seconds, result.gpus)


def _sandbox_metrics(funcs: Sequence[Any]) -> dict[str, float]:
    merged: dict[str, float] = {}
    for func in funcs:
        if hasattr(func, "metrics"):
            merged.update(func.metrics())
    return merged


def _final_report(result: TrialResult) -> dict[str, Any]:
    """The last Tune report: everything the leaderboard needs, so the driver needs no shared filesystem."""
    m = result.metrics or {}
    t = result.test_metrics or {}
    return {
        "step": result.steps,
        "final": True,
        "status": result.status,
        "error": result.error or "",
        "trial_key": result.key,
        "trial_dir": result.out_dir,
        "selection_split": result.selection_split,
        "selection_accuracy": m.get("accuracy"),
        "dev_accuracy": m.get("accuracy") if result.selection_split == "dev" else None,
        "selection_f1": m.get("f1"),
        "selection_extraction_rate": m.get("extraction_rate"),
        "selection_correct": m.get("correct"),
        "selection_n": m.get("n"),
        "selection_gold_logprob": m.get("gold_logprob"),
        "test_accuracy": t.get("accuracy"),
        "test_f1": t.get("f1"),
        "test_correct": t.get("correct"),
        "test_n": t.get("n"),
        "test_gold_logprob": t.get("gold_logprob"),
        "train_seconds": result.train_seconds,
        "wall_seconds": result.wall_seconds,
        "gpu_hours": result.gpu_hours,
        "device": result.device,
        "cached": result.cached,
        "curve_summary_json": json.dumps(result.curve_summary, default=str),
        "candidate_failures_json": json.dumps(result.candidate_failures),
    }


def _final_evaluation(
    config: ExperimentConfig, trainer: Any, loaded: Any, task: Task, splits: Splits, out: Path, result: TrialResult
) -> None:
    from reward_search.training.evaluation import evaluate
    from reward_search.training.models import LoadedModel

    model = trainer.model
    model.eval()
    policy = LoadedModel(model, loaded.tokenizer, loaded.spec, loaded.source, loaded.device)
    eval_config = _eval_config(config)
    started = time.perf_counter()
    generation = config.training.generation  # the fast backend's static-cache path where configured
    selection = evaluate(policy, task, _selection_problems(config, splits), eval_config, False, generation)
    io.write_parquet(out / "selection.parquet", selection.records)
    result.metrics = selection.summary()
    tokens = selection.tokens_generated
    if config.training.eval_test and config.training.selection_split != "test":
        test_problems = splits.test[: config.training.test_size] if config.training.test_size else splits.test
        test = evaluate(policy, task, test_problems, eval_config, False, generation)
        io.write_parquet(out / "test.parquet", test.records)
        result.test_metrics = test.summary()
        tokens += test.tokens_generated
    result.eval_seconds = round(time.perf_counter() - started, 3)
    result.tokens_generated += tokens


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
        IntermediateReport(reporter, task, report_problems, loaded, _eval_config(config), recorder),
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


def print_summary(result: TrialResult, stream: Any = sys.stdout) -> None:
    """A short human summary of a trial."""
    m = result.metrics or {}
    lines = [
        f"trial {result.key}  {result.reward_spec}  status {result.status}"
        + (" (cached)" if result.cached else "")
        + (f"  resumed from step {result.resumed_from_step}" if result.resumed_from_step else ""),
    ]
    if result.error:
        lines.append(f"  reason: {result.error}")
    if m:
        lines.append(
            f"  {result.selection_split}: accuracy {m.get('accuracy', 0):.3f}  F1 {m.get('f1', 0):.3f}  "
            f"extracted {m.get('extraction_rate', 0):.3f}  ({m.get('correct', 0)}/{m.get('n', 0)})  "
            f"gold log-prob {_fmt(m.get('gold_logprob'))}"
        )
    if result.test_metrics:
        lines.append(f"  test: accuracy {result.test_metrics.get('accuracy', 0):.3f}")
    lines.append(
        f"  {result.steps} steps in {result.train_seconds:.1f}s train + {result.eval_seconds:.1f}s eval on "
        f"{result.device or '?'}; {result.tokens_generated} tokens generated"
    )
    summary = result.curve_summary
    lines.append(f"  {'reward':<32} {'start':>8} {'end':>8}")
    for name in result.reward_names:
        curve = summary.get(f"reward/{name}") or {}
        start, end = curve.get("start"), curve.get("end")
        lines.append(f"  {name:<32} {_fmt(start):>8} {_fmt(end):>8}")
    for label in ("zero_std_share", "completion_length"):
        curve = summary.get(label) or {}
        lines.append(f"  {label:<32} {_fmt(curve.get('start')):>8} {_fmt(curve.get('end')):>8}")
    signal = summary.get("signal") or {}
    lines.append(
        f"  learning signal: tied steps {_fmt(signal.get('tied_step_share'))}  "
        f"|advantage| {_fmt(signal.get('mean_abs_advantage'))}  LoRA B norm {signal.get('adapter_norm') or 0:.3g}"
        + (f"  ({signal['no_signal']})" if signal.get("no_signal") else "")
    )
    lines.append(f"  folder: {result.out_dir}")
    print("\n".join(lines), file=stream)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
