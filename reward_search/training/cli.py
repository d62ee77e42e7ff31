"""`reward-search evaluate`, `screen` and `models prepare`: a model on a split, one screening run, the local models.

`register(subparsers)` adds the commands, each with its handler (`set_defaults(handler=...)`), as every
subsystem's `cli.py` does. Heavy libraries (torch, transformers) are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reward_search.config import ExperimentConfig, add_config_args, config_from_args
from reward_search.errors import UserError

_EVALUATE_FLAGS = (
    ("model", "model.spec"),
    ("split", "eval.split"),
    ("limit", "eval.limit"),
    ("batch_size", "eval.batch_size"),
    ("max_new_tokens", "eval.max_new_tokens"),
    ("device", "model.device"),
)


def quiet_libraries() -> None:
    """Silence library chatter (weight-loading bars, advisory warnings) so our own progress bar is readable."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # transformers is a dependency; without it the command fails later with a clear error
        pass


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "model"


def _format_metrics_table(summary: dict[str, Any]) -> str:
    lines = [f"{'mode':<12} {'accuracy':>9} {'extracted':>10} {'F1 (paper)':>11} {'correct':>9}"]
    for mode, m in summary["by_mode"].items():
        lines.append(
            f"{mode:<12} {m['accuracy']:>9.3f} {m['extraction_rate']:>10.3f} {m['f1']:>11.3f} "
            f"{m['correct']:>5}/{m['n']:<3}"
        )
    return "\n".join(lines)


def _evaluation_folder(args: argparse.Namespace, config: ExperimentConfig) -> Path:
    """`--out`, else `<storage_path>/<run name>/evaluations/<model>[-adapter]-<split>`."""
    if args.out:
        return Path(args.out)
    name = f"{_slug(config.model.spec)}{'-adapter' if args.adapter else ''}-{config.eval.split}"
    return Path(config.run.storage_path) / config.run.name / "evaluations" / name


def _attach(loaded: Any, adapter: str, spec: str) -> Any:
    """The model with `--adapter` merged in; one line when the adapter was trained on another architecture."""
    from reward_search.training.evaluation import attach_adapter

    try:
        return attach_adapter(loaded, adapter)
    except (RuntimeError, ValueError) as exc:
        text = str(exc)
        if "size mismatch" not in text and "not found in the base model" not in text:
            raise
        detail = next((line.strip() for line in text.splitlines() if "size mismatch" in line), text.splitlines()[0])
        raise UserError(
            f"--adapter {adapter}: was trained on another architecture than the model {spec!r} ({detail}); "
            "give the --model it was trained on"
        ) from None


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Greedy batched evaluation of a model (and adapter) on a split; records and metrics written to a folder."""
    given = [(flag, key, getattr(args, flag)) for flag, key in _EVALUATE_FLAGS if getattr(args, flag) is not None]
    labels = {f"{key}={value}": f"--{flag.replace('_', '-')} {value}" for flag, key, value in given}
    config = config_from_args(args, list(labels), labels)
    quiet_libraries()

    from reward_search.config import to_plain
    from reward_search.task import get_task
    from reward_search.training.evaluation import evaluate, write_result
    from reward_search.training.models import load_model

    task = get_task(config.data)
    splits = task.load_splits()
    problems = splits.get(config.eval.split)
    if config.eval.limit is not None:
        problems = problems[: config.eval.limit]
    if not problems:
        raise UserError(f"eval.split: the {config.eval.split} split is empty")
    print(f"loading model {config.model.spec!r} ...", file=sys.stderr)
    loaded = load_model(config.model.spec, config.model.dtype, config.model.device, seed=config.run.seed)
    if args.adapter:
        loaded = _attach(loaded, args.adapter, config.model.spec)
    print(f"model: {loaded.source} on {loaded.device}", file=sys.stderr)
    result = evaluate(loaded, task, problems, config.eval, show_progress=not args.no_progress)
    out = _evaluation_folder(args, config)
    extra_info = {
        "split": config.eval.split,
        "adapter": args.adapter,
        "data": to_plain(splits.manifest),
        "config": config.to_dict(),
    }
    write_result(result, out, extra_info)
    summary = result.summary()
    if args.json:
        print(json.dumps({k: v for k, v in summary.items()}, indent=2))
    else:
        print(
            f"\n{len(problems)} {config.eval.split} questions, {summary['tokens_generated']} tokens in "
            f"{summary['seconds']:.1f}s ({summary['tokens_per_second']:.1f} tokens/s)"
        )
        print(_format_metrics_table(summary))
        print(f"records and metrics: {out}")
    return 0


def _load_rewards(paths: Sequence[str], config: Any) -> list[Any]:
    """Candidates from reward files (`FILE.py` or `FILE.py:function`), each validated before any model loads."""
    from reward_search.candidates.candidate import Origin
    from reward_search.candidates.sandbox import CandidateRunner
    from reward_search.candidates.validation import validate_source

    candidates = []
    with CandidateRunner(config.candidates.sandbox, config.candidates.policy) as runner:
        for text in paths:
            path, _, name = text.partition(":") if text.count(":") == 1 and not Path(text).exists() else (text, "", "")
            file = Path(path)
            if file.is_dir():
                raise UserError(f"--reward {path}: is a directory, not a reward file")
            if not file.is_file():
                raise UserError(f"--reward {path}: no such file")
            try:
                source = file.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(f"--reward {path}: not UTF-8 text (offset {exc.start})") from None
            verdict = validate_source(
                source,
                runner,
                config.candidates,
                name=name or None,
                description=f"from {file.name}",
                origin=Origin(proposer="user"),
            )
            if not verdict.accepted or verdict.candidate is None:
                reasons = "; ".join(verdict.reasons) or "rejected"
                raise UserError(f"--reward {path}: rejected at {verdict.stage}: {reasons}")
            candidates.append(verdict.candidate)
    return candidates


def cmd_screen(args: argparse.Namespace) -> int:
    """One screening run for the given reward files (or the base rewards alone); exit 0 when it finished."""
    from dataclasses import asdict

    config = config_from_args(args)
    from reward_search.training.spec import RewardSpec, parse_weights

    if args.base_only and args.reward:
        raise UserError("--base-only screens the base rewards alone; drop --reward or --base-only")
    if not args.base_only and not args.reward:
        raise UserError("give at least one --reward FILE.py, or --base-only for the base-rewards baseline")
    try:
        weights = parse_weights(args.weights, len(args.reward or []))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    candidates = _load_rewards(args.reward or [], config)
    try:
        spec = RewardSpec(tuple(candidates), weights, base_rewards=config.training.base_rewards)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    quiet_libraries()
    from reward_search.training.console import print_summary
    from reward_search.training.screening import run_screening

    try:
        result = run_screening(config, spec, args.out, progress=not args.no_progress)
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:  # an infrastructure failure: one line here, the traceback in the trial's error.log
        print(
            f"reward-search: screening failed: {type(exc).__name__}: {exc} (traceback in the trial's error.log; "
            "rerun to resume from the last checkpoint)",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps(asdict(result), indent=2, default=str))
    else:
        print_summary(result)
    return 0 if result.status == "done" else 1


def cmd_models_prepare(args: argparse.Namespace) -> int:
    """Convert the embedded model and build the tiny tokenizer (both cached); print where they are."""
    quiet_libraries()
    from reward_search.training.models import embedded_model_dir, tiny_tokenizer_dir

    print(f"embedded model: {embedded_model_dir()}")
    print(f"tiny tokenizer: {tiny_tokenizer_dir()}")
    return 0


def register(subparsers: Any) -> None:
    """Add `evaluate`, `screen` and `models prepare` to the `reward-search` command line."""
    p = subparsers.add_parser("evaluate", help="greedy batched evaluation of a model (and adapter) on a split")
    add_config_args(p)
    p.add_argument("--model", help="model spec: embedded, random:<arch>, a folder, a .gguf file or a hub id")
    p.add_argument("--split", choices=["train", "dev", "test"], help="which split (default: test)")
    p.add_argument("--limit", type=int, help="evaluate only the first N questions of the split")
    p.add_argument("--adapter", help="a LoRA adapter folder to merge into the model")
    p.add_argument("--batch-size", type=int, help="questions per generation batch (default 32)")
    p.add_argument("--max-new-tokens", type=int, help="generation budget per question (default 256)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where to run (default: auto)")
    p.add_argument("--out", help="output folder (default: <storage_path>/<run name>/evaluations/...)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_evaluate)

    p = subparsers.add_parser(
        "screen",
        help="one GRPO + LoRA screening run for one reward spec, without Ray",
        description="Train the configured model with GRPO + LoRA under the base rewards plus the given candidate "
        "rewards, evaluate the adapter on the selection split (dev by default) and print a summary. A finished "
        "trial with the same key (rewards, training config, seed, model, data) is returned from disk; an "
        "interrupted one resumes from its last checkpoint.",
    )
    add_config_args(p)
    p.add_argument("--reward", action="append", metavar="FILE.py[:FUNC]", help="a candidate reward file (repeatable)")
    p.add_argument("--weights", help="comma-separated weights for the --reward files (default: all 1.0)")
    p.add_argument("--base-only", action="store_true", help="screen the base rewards alone (the baseline)")
    p.add_argument("--out", help="trial folder (default: <storage_path>/<run name>/trials/<trial key>)")
    p.add_argument("--json", action="store_true", help="print the TrialResult as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_screen)

    p = subparsers.add_parser("models", help="model utilities")
    models_sub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    prep = models_sub.add_parser("prepare", help="convert the embedded model and build the tiny tokenizer (cached)")
    prep.set_defaults(handler=cmd_models_prepare)
