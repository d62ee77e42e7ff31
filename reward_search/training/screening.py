"""One screening run: GRPO + LoRA (TRL, peft) under one reward spec, then the adapter scored on the selection split.

`run_screening` is the unit of work the search runs as a Ray Tune trial, and it also runs on its own
(`reward-search screen`). A trial folder holds `trial.json` (the key and what it hashes), `curves.parquet`,
`checkpoints/`, `adapter/`, `selection.parquet` (and `test.parquet`), and `result.json`. A finished trial with the
same key is returned without training; an interrupted one resumes from its last complete checkpoint.

The trial's identity on disk (folder, marker, cached result, checkpoints) is `training/trial_cache.py`'s; the TRL
trainer assembly is `training/trainer.py`'s; the console summary is `training/console.py`'s.
"""

from __future__ import annotations

import os
import shutil
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reward_search import io
from reward_search.config import ExperimentConfig
from reward_search.task import Problem, Splits, Task, get_task
from reward_search.task.base_rewards import base_reward_funcs
from reward_search.training.reporting import LocalReporter, Reporter
from reward_search.training.spec import RewardSpec, reward_names, trial_key
from reward_search.training.trial_cache import (
    TrialResult,
    cached_result,
    checkpoint_step,
    final_report,
    latest_checkpoint,
    trial_folder,
    write_marker,
)


def _selection_problems(config: ExperimentConfig, splits: Splits) -> tuple[Problem, ...]:
    problems = splits.get(config.training.selection_split)
    if config.training.selection_size is not None:
        problems = problems[: config.training.selection_size]
    return problems


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
    out = trial_folder(config, key, out_dir)
    cached = cached_result(out, key)
    if cached is not None:
        reporter.report(final_report(cached), None)
        return cached
    out.mkdir(parents=True, exist_ok=True)
    if main:
        io.remove_stale_temps(out)  # a killed earlier attempt can leave one mid-write (its records stay whole)
        write_marker(out, key, config, spec, splits.manifest)
    result = TrialResult(
        key=key,
        status="done",
        reward_spec=spec.name,
        reward_names=reward_names(spec, list(base_reward_funcs(config.training.graded_base_reward))),
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
    reporter.report(final_report(result), None)  # after result.json: Tune may end the process on a final report
    return result


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
    from reward_search.training.trainer import build_session, configure_threads, restore_finished

    configure_threads()
    checkpoints = out / "checkpoints"
    checkpoints.mkdir(exist_ok=True)
    restored = reporter.restore(checkpoints)
    resume = restored or latest_checkpoint(checkpoints)
    result.resumed_from_step = checkpoint_step(resume) if resume else 0

    session = build_session(config, spec, task, splits, out, reporter, progress, result.resumed_from_step)
    result.device = session.loaded.device
    trainer = session.trainer
    started = time.perf_counter()
    try:
        if resume and result.resumed_from_step >= config.training.steps:
            restore_finished(trainer, resume)  # TRL would train one step past max_steps from a final checkpoint
        else:
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


def _final_evaluation(
    config: ExperimentConfig, trainer: Any, loaded: Any, task: Task, splits: Splits, out: Path, result: TrialResult
) -> None:
    from reward_search.training.evaluation import evaluate
    from reward_search.training.models import LoadedModel
    from reward_search.training.trainer import eval_config

    model = trainer.model
    model.eval()
    policy = LoadedModel(model, loaded.tokenizer, loaded.spec, loaded.source, loaded.device)
    evaluation = eval_config(config)
    started = time.perf_counter()
    generation = config.training.generation  # the fast backend's static-cache path where configured
    selection = evaluate(policy, task, _selection_problems(config, splits), evaluation, False, generation)
    io.write_parquet(out / "selection.parquet", selection.records)
    from reward_search.ops.killpoint import kill_point  # a test hook, inert unless its variable is set

    kill_point("evaluate")
    result.metrics = selection.summary()
    tokens = selection.tokens_generated
    if config.training.eval_test and config.training.selection_split != "test":
        test_problems = splits.test[: config.training.test_size] if config.training.test_size else splits.test
        test = evaluate(policy, task, test_problems, evaluation, False, generation)
        io.write_parquet(out / "test.parquet", test.records)
        result.test_metrics = test.summary()
        tokens += test.tokens_generated
    result.eval_seconds = round(time.perf_counter() - started, 3)
    result.tokens_generated += tokens
