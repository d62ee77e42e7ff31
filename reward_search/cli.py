"""The `reward-search` command line.

User errors (bad config, missing data, unknown model) print one line and exit 2; no traceback. Heavy libraries
(torch, transformers, ray) are imported inside the commands that need them, so `--help` and validation are fast.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reward_search import __version__
from reward_search.errors import UserError

Handler = Callable[[argparse.Namespace], int]

EPILOG = """\
examples:
  reward-search evaluate experiments/demo.yaml           evaluate the embedded model on 32 test questions
  reward-search evaluate --model embedded --split dev --limit 20 --set eval.max_new_tokens=128
  reward-search validate experiments/demo.yaml --set eval.batch_size=8
  reward-search data --set data.source=local --set data.path=/data/gsm8k
  reward-search rewards check my_reward.py --json

Configuration: an experiment YAML file (see experiments/) plus any number of --set KEY=VALUE overrides, where
KEY is a dotted field path (e.g. eval.limit, model.spec, data.source). Every field and its default:
`reward-search validate`.
"""


def _add_config_args(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument(
        "experiment", nargs=None if required else "?", help="experiment YAML file (defaults apply without one)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field by its dotted path, e.g. --set eval.limit=20 (repeatable)",
    )


def _load(args: argparse.Namespace, extra: Sequence[str] = ()) -> Any:
    from reward_search.config import load_config

    return load_config(args.experiment, [*args.overrides, *extra])


def _quiet_libraries() -> None:
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


def cmd_validate(args: argparse.Namespace) -> int:
    from reward_search.config import dump_config
    from reward_search.search.sharing import validate_warnings
    from reward_search.training.placement import preflight

    config = _load(args)
    preflight(config)  # this machine: bitsandbytes for 8-bit/4-bit, and a local Ray's GPUs
    sys.stdout.write(dump_config(config))
    for warning in validate_warnings(config):
        print(f"# warning: {warning}", file=sys.stderr)
    print(f"# {args.experiment or 'defaults'}: valid", file=sys.stderr)
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from reward_search.config import to_plain
    from reward_search.task import get_task

    config = _load(args)
    splits = get_task(config).load_splits()
    manifest = to_plain(splits.manifest)
    if args.json:
        print(json.dumps(manifest, indent=2))
        return 0
    named = f"{manifest['display_name']} ({manifest['task']})"
    print(f"task {named} from {manifest['location']} (dev seed {manifest['dev_seed']})")
    for name, info in manifest["splits"].items():
        print(f"  {name:<5} {info['size']:>6} questions  sha256 {info['sha256'][:16]}")
    if manifest["removed_overlap"]:
        print(f"  dropped from the training pool as duplicates of dev/test: {manifest['removed_overlap']}")
    return 0


def _format_metrics_table(summary: dict[str, Any]) -> str:
    lines = [f"{'mode':<12} {'accuracy':>9} {'extracted':>10} {'F1 (paper)':>11} {'correct':>9}"]
    for mode, m in summary["by_mode"].items():
        lines.append(
            f"{mode:<12} {m['accuracy']:>9.3f} {m['extraction_rate']:>10.3f} {m['f1']:>11.3f} "
            f"{m['correct']:>5}/{m['n']:<3}"
        )
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    extra = []
    for flag, key in (
        ("model", "model.spec"),
        ("split", "eval.split"),
        ("limit", "eval.limit"),
        ("batch_size", "eval.batch_size"),
        ("max_new_tokens", "eval.max_new_tokens"),
        ("device", "model.device"),
    ):
        value = getattr(args, flag)
        if value is not None:
            extra.append(f"{key}={value}")
    config = _load(args, extra)
    _quiet_libraries()

    from reward_search.config import to_plain
    from reward_search.task import get_task
    from reward_search.training.evaluation import attach_adapter, evaluate, write_result
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
        loaded = attach_adapter(loaded, args.adapter)
    print(f"model: {loaded.source} on {loaded.device}", file=sys.stderr)
    result = evaluate(loaded, task, problems, config.eval, show_progress=not args.no_progress)
    out = (
        Path(args.out)
        if args.out
        else (
            Path(config.run.storage_path)
            / config.run.name
            / "evaluations"
            / f"{_slug(config.model.spec)}{'-adapter' if args.adapter else ''}-{config.eval.split}"
        )
    )
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
            if not file.is_file():
                raise UserError(f"--reward {path}: no such file")
            verdict = validate_source(
                file.read_text(encoding="utf-8"),
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
    from dataclasses import asdict

    config = _load(args)
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
    _quiet_libraries()
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


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args)
    _quiet_libraries()
    from reward_search.search.driver import run_search

    outcome = run_search(config, args.run_dir, address=args.address)
    print(f"run directory: {outcome.run_dir} ({outcome.seconds / 60:.1f} min)")
    return 0


def _run_dir(text: str) -> tuple[Path, Any]:
    """A run directory and its stored config; a one-line error when the folder is not one."""
    from reward_search.config import load_config
    from reward_search.search.driver import CONFIG_FILE

    folder = Path(text)
    if not (folder / CONFIG_FILE).is_file():
        raise UserError(f"{folder}: not a run directory (no {CONFIG_FILE}); start one with `reward-search run`")
    return folder, load_config(folder / CONFIG_FILE)


def cmd_resume(args: argparse.Namespace) -> int:
    from reward_search.search.driver import run_search
    from reward_search.search.sharing import resume_config

    folder, config = _run_dir(args.run_dir)
    config = resume_config(folder, config, args.overrides)
    _quiet_libraries()
    outcome = run_search(config, folder, address=args.address, resume=True)
    print(f"run directory: {outcome.run_dir} ({outcome.seconds / 60:.1f} min)")
    return 0


def cmd_finalize(args: argparse.Namespace) -> int:
    from reward_search.search.driver import finalize_only
    from reward_search.search.finalize import finalize_table

    folder, config = _run_dir(args.run_dir)
    _quiet_libraries()
    outcome = finalize_only(config, folder, address=args.address)
    print(finalize_table(outcome))
    print(f"wrote {folder / 'finalize.json'}; report: reward-search report {folder}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from reward_search.search.driver import DriverState
    from reward_search.search.leaderboard import LEADERBOARD_FILE, load_entries
    from reward_search.search.progress import leaderboard_table

    if args.address and not args.run_dir:  # every live search on the cluster
        from reward_search.search.live import format_live_searches, live_searches

        rows = live_searches(args.address)
        print(json.dumps(rows, indent=2, default=str) if args.json else format_live_searches(rows, args.address))
        return 0
    if not args.run_dir:
        raise UserError("status: give a run directory (or --address ADDR to list the live searches on a cluster)")
    if args.address:  # a running search: ask its leaderboard actor (RUN is a run id or a run name)
        from reward_search.search.live import format_live_status, live_status

        live = live_status(args.address, args.run_dir)
        print(json.dumps(live, indent=2, default=str) if args.json else format_live_status(live))
        return 0
    folder, config = _run_dir(args.run_dir)
    entries = load_entries(folder) if (folder / LEADERBOARD_FILE).is_file() else []
    state = DriverState.load(folder)
    if args.json:
        print(json.dumps({"entries": [e.to_dict() for e in entries], "state": vars(state)}, indent=2, default=str))
        return 0
    rounds = max((e.round for e in entries), default=0)
    from reward_search.proposers.base import spend_text

    records = state.proposer_state.get("records", []) or []  # older states lack the count: the records have it
    unpriced = state.proposer_usage.get("unpriced_calls") or sum(r.get("cost_known") is False for r in records)
    print(
        f"run {folder.name}: round {rounds} of {config.search.rounds}, {len(entries)} candidates, "
        f"{state.sessions} driver session(s); proposer spend "
        f"{spend_text(state.proposer_usage.get('cost_usd'), unpriced)}"
    )
    from reward_search.proposers.transcripts import format_round_counts

    for line in format_round_counts(state.proposer_state.get("records", []), str(folder / "proposals")):
        print(line)  # LLM proposer: parse outcomes and rejections per round, with the transcript folder
    print(leaderboard_table(entries, metric=config.selection.metric))
    return 0


def cmd_models_prepare(args: argparse.Namespace) -> int:
    _quiet_libraries()
    from reward_search.training.models import embedded_model_dir, tiny_tokenizer_dir

    print(f"embedded model: {embedded_model_dir()}")
    print(f"tiny tokenizer: {tiny_tokenizer_dir()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reward-search",
        description="Search for reward functions for GRPO post-training of language models, on Ray.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"reward-search {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("evaluate", help="greedy batched evaluation of a model (and adapter) on a split")
    _add_config_args(p)
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

    p = sub.add_parser(
        "screen",
        help="one GRPO + LoRA screening run for one reward spec, without Ray",
        description="Train the configured model with GRPO + LoRA under the base rewards plus the given candidate "
        "rewards, evaluate the adapter on the selection split (dev by default) and print a summary. A finished "
        "trial with the same key (rewards, training config, seed, model, data) is returned from disk; an "
        "interrupted one resumes from its last checkpoint.",
    )
    _add_config_args(p)
    p.add_argument("--reward", action="append", metavar="FILE.py[:FUNC]", help="a candidate reward file (repeatable)")
    p.add_argument("--weights", help="comma-separated weights for the --reward files (default: all 1.0)")
    p.add_argument("--base-only", action="store_true", help="screen the base rewards alone (the baseline)")
    p.add_argument("--out", help="trial folder (default: <storage_path>/<run name>/trials/<trial key>)")
    p.add_argument("--json", action="store_true", help="print the TrialResult as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_screen)

    p = sub.add_parser(
        "run",
        help="run a reward search (rounds of proposals screened as Ray Tune trials)",
        description="Start a search: each round the proposer writes candidate rewards, they are validated in the "
        "sandbox, screened as GRPO + LoRA Tune trials and ranked on the dev split; the leaderboard conditions the "
        "next round. Uses RAY_ADDRESS / --address when given, else starts a local Ray. Ctrl-C stops it; "
        "`reward-search resume RUN_DIR` continues without retraining finished candidates.",
    )
    _add_config_args(p)
    p.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--run-dir", help="run directory (default: <run.storage_path>/<run.name>)")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("resume", help="continue a run from its run directory")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a resource or budget key (search.max_concurrent_trials, search.gpus_per_trial, budgets, ...) "
        "to continue on a larger or smaller cluster; keys that change what a trial computes are refused",
    )
    p.set_defaults(handler=cmd_resume)

    p = sub.add_parser(
        "finalize",
        help="ensembles, baseline, random control and seeds for a finished search (runs after `run` by itself)",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    p.set_defaults(handler=cmd_finalize)

    p = sub.add_parser(
        "status",
        help="progress and leaderboard of a run directory (or, with --address, of a running search by run name)",
    )
    p.add_argument("run_dir", metavar="RUN_DIR|RUN", nargs="?")
    p.add_argument(
        "--address",
        help="a Ray cluster (GCS): without RUN, list its live searches; with RUN (run id or name), read that one",
    )
    p.add_argument("--json", action="store_true", help="print entries and driver state as JSON")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser("validate", help="check an experiment file and print the resolved config")
    _add_config_args(p)
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("data", help="load the configured data and print split sizes and fingerprints")
    _add_config_args(p)
    p.add_argument("--json", action="store_true", help="print the data manifest as JSON")
    p.set_defaults(handler=cmd_data)

    p = sub.add_parser("models", help="model utilities")
    models_sub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    prep = models_sub.add_parser("prepare", help="convert the embedded model and build the tiny tokenizer (cached)")
    prep.set_defaults(handler=cmd_models_prepare)

    _add_plugin_commands(sub)
    return parser


def _add_plugin_commands(sub: Any) -> None:
    """Commands that live beside the subsystems they drive."""
    from reward_search.candidates.cli import add_rewards_parser, run_rewards

    add_rewards_parser(sub)
    sub.choices["rewards"].set_defaults(handler=run_rewards)
    from reward_search.analysis.cli import add_report_parser
    from reward_search.ops.cli import add_ops_parsers

    add_ops_parsers(sub)
    add_report_parser(sub)
    from reward_search.ops.estimate import add_estimate_parser

    add_estimate_parser(sub)


def _missing_module(exc: ModuleNotFoundError) -> int:
    """A Python without the project's environment (e.g. a Ray head started outside the venv): one line, exit 2."""
    if (exc.name or "").startswith("reward_search"):
        raise exc
    from reward_search.ops.jobs import missing_module_line

    print(f"reward-search: error: {missing_module_line(exc.name or str(exc), sys.executable)}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
    except ModuleNotFoundError as exc:
        return _missing_module(exc)
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except UserError as exc:
        print(f"reward-search: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ModuleNotFoundError as exc:
        return _missing_module(exc)
    except KeyboardInterrupt:
        print("reward-search: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
