"""The untrained model in every finalize: the base model without training, under the run's own evaluation.

It is evaluated once per fingerprint (`training/untrained.untrained_fingerprint`: model, data, eval settings) as a
Ray task holding one trial's resources, and cached in `<run dir>/untrained/<fingerprint>/` (`selection.parquet`,
`test.parquet`, then `result.json`, each written atomically) and in the user cache
(`$REWARD_SEARCH_CACHE/untrained/<fingerprint>/`) so that other runs with the same fingerprint reuse it. A resumed
finalize finds it in the run directory. The row it adds to `finalize.json` has the shape of a finalize job (kind
`untrained`, no members, no steps), so the tables and the report's statistics take it like the baseline; like the
baseline, it skips dev under `finalize.controls_on_dev: false`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reward_search import io
from reward_search.config import ExperimentConfig

UNTRAINED = "untrained"  # the row's name and kind in finalize.json, and the run directory's folder
RESULT_FILE = "result.json"
SPLIT_FILES = ("selection", "test")
Evaluator = Callable[[dict[str, Any]], dict[str, Any]]


def user_cache_dir(fingerprint: str) -> Path:
    """Where every run on this machine finds an untrained evaluation: `<cache root>/untrained/<fingerprint>`."""
    from reward_search.training.models import cache_root

    return cache_root() / UNTRAINED / fingerprint


def load_cached(folder: Path, fingerprint: str) -> dict[str, Any] | None:
    """The stored evaluation in `folder` when it is complete and has this fingerprint, else None."""
    path = folder / RESULT_FILE
    if not path.is_file() or not all((folder / f"{name}.parquet").is_file() for name in SPLIT_FILES):
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return stored if stored.get("fingerprint") == fingerprint and stored.get("status") == "done" else None


def write_evaluation(folder: Path, outcome: dict[str, Any]) -> dict[str, Any]:
    """Records of each split, then `result.json` (the summaries, without records) last: a folder with a
    `result.json` is complete."""
    for name in SPLIT_FILES:
        io.write_parquet(folder / f"{name}.parquet", outcome["splits"][name]["records"])
    stored = {k: v for k, v in outcome.items() if k != "splits"}
    stored["status"] = "done"
    stored["summaries"] = {name: outcome["splits"][name]["summary"] for name in SPLIT_FILES}
    io.write_json(folder / RESULT_FILE, stored)
    return stored


def copy_evaluation(source: Path, folder: Path, stored: dict[str, Any]) -> None:
    """Copy a cached evaluation's files into `folder` (atomically, `result.json` last)."""
    import pyarrow.parquet as pq

    for name in SPLIT_FILES:
        io.write_parquet(folder / f"{name}.parquet", pq.read_table(source / f"{name}.parquet").to_pylist())
    io.write_json(folder / RESULT_FILE, stored)


def untrained_resources(config: ExperimentConfig) -> dict[str, float]:
    """One trial's CPUs and GPUs (at most one GPU: evaluation runs in one process, also for a DDP trial)."""
    return {"num_cpus": config.search.cpus_per_trial, "num_gpus": min(config.search.gpus_per_trial, 1.0)}


def ray_evaluator(config: ExperimentConfig) -> Evaluator:
    """`training/untrained.evaluate_untrained` as a Ray task with one trial's resources (retried like a trial)."""

    def run(config_data: dict[str, Any]) -> dict[str, Any]:
        import ray

        from reward_search.training.untrained import evaluate_untrained

        task = ray.remote(evaluate_untrained).options(
            **untrained_resources(config), max_retries=config.search.max_failures, name="finalize-untrained"
        )
        return ray.get(task.remote(config_data))

    return run


def evaluate_or_reuse(
    config: ExperimentConfig, run_dir: Path, fingerprint: str, evaluator: Evaluator | None = None
) -> tuple[dict[str, Any], str]:
    """The stored evaluation and where it came from: "run directory", "user cache" or "evaluated"."""
    folder = run_dir / UNTRAINED / fingerprint
    stored = load_cached(folder, fingerprint)
    if stored is not None:
        return stored, "run directory"
    shared = user_cache_dir(fingerprint)
    stored = load_cached(shared, fingerprint)
    if stored is not None:
        copy_evaluation(shared, folder, stored)
        return stored, "user cache"
    outcome = (evaluator or ray_evaluator(config))(config.to_dict())
    if outcome.get("fingerprint") != fingerprint:
        raise RuntimeError(f"untrained evaluation: fingerprint {outcome.get('fingerprint')} != {fingerprint}")
    stored = write_evaluation(folder, outcome)
    try:
        write_evaluation(shared, outcome)
    except OSError as exc:  # a read-only or full cache costs other runs a re-evaluation, never this one's row
        print(f"finalize untrained: not cached in {shared} ({exc})", file=sys.stderr)
    return stored, "evaluated"


def _split_numbers(prefix: str, summary: dict[str, Any] | None) -> dict[str, Any]:
    s = summary or {}
    flexible = (s.get("by_mode") or {}).get("flexible") or {}
    values = {
        "accuracy": s.get("accuracy"),
        "f1": s.get("f1"),
        "correct": s.get("correct"),
        "n": s.get("n"),
        "extraction_rate": s.get("extraction_rate"),
        "gold_logprob": s.get("gold_logprob"),
        "flexible_accuracy": flexible.get("accuracy"),
        "flexible_correct": flexible.get("correct"),
    }
    return {f"{prefix}_{key}": value for key, value in values.items()}


def untrained_row(config: ExperimentConfig, folder: Path, stored: dict[str, Any], source: str) -> dict[str, Any]:
    """The `untrained` row of `finalize.json`, shaped like a finalize job (strict and flexible accuracy per split).

    Evaluated on test alone (a run that selects on test, or `finalize.controls_on_dev: false`), its selection split
    is test and its selection numbers are cleared, as a control's are."""
    from reward_search.training.untrained import test_only

    summaries = stored.get("summaries") or {}
    on_test = test_only(config)
    result = {
        "status": "done",
        "fingerprint": stored.get("fingerprint"),
        "trial_key": None,
        "trial_dir": str(folder),
        "selection_split": "test" if on_test else config.training.selection_split,
        **_split_numbers("selection", None if on_test else summaries.get("selection")),
        **_split_numbers("test", summaries.get("test")),
        "train_seconds": 0.0,
        "eval_seconds": stored.get("seconds"),
        "device": stored.get("device"),
        "source": source,
        "cached": source != "evaluated",
    }
    return {
        "name": UNTRAINED,
        "kind": UNTRAINED,
        "members": [],
        "member_ids": [],
        "steps": 0,
        "seed": config.run.seed,
        "result": result,
    }


def untrained_job(
    config: ExperimentConfig, run_dir: Path, evaluator: Evaluator | None = None, verbose: bool = True
) -> dict[str, Any]:
    """The untrained row for this run: reused from the run directory or the user cache, else evaluated (Ray must
    be initialised unless `evaluator` is given). A failed evaluation gives a failed row, never a failed finalize."""
    from reward_search.task import get_task
    from reward_search.training.untrained import untrained_fingerprint

    fingerprint = untrained_fingerprint(config, get_task(config.data).load_splits().manifest)
    folder = run_dir / UNTRAINED / fingerprint
    try:
        stored, source = evaluate_or_reuse(config, run_dir, fingerprint, evaluator)
    except Exception as exc:  # recorded in the row; the trained jobs' results still count
        row = untrained_row(config, folder, {"fingerprint": fingerprint}, "evaluated")
        row["result"].update(status="failed", error=f"{type(exc).__name__}: {exc}", cached=False)
        return row
    row = untrained_row(config, folder, stored, source)
    if verbose:
        r = row["result"]
        print(
            f"finalize untrained: {source} ({fingerprint}), test strict {_fmt(r['test_accuracy'])} "
            f"flexible {_fmt(r['test_flexible_accuracy'])}",
            file=sys.stderr,
        )
    return row


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "-"


def outcome_lines(outcome: dict[str, Any]) -> list[str]:
    """The untrained row beside the baseline on test, in one line (none when the row is absent)."""
    jobs = {j.get("name"): j.get("result") or {} for j in outcome.get("jobs") or []}
    row = jobs.get(UNTRAINED)
    if row is None:
        return []
    if row.get("status") != "done":
        return [f"untrained (no training): {row.get('status')} {row.get('error') or ''}".rstrip()]
    baseline = jobs.get("baseline") or {}
    return [
        f"untrained (no training): test strict {_fmt(row.get('test_accuracy'))}, flexible "
        f"{_fmt(row.get('test_flexible_accuracy'))} on {row.get('test_n')} questions; baseline test strict "
        f"{_fmt(baseline.get('test_accuracy'))} (fingerprint {row.get('fingerprint')}, {row.get('source')})"
    ]


def status_lines(run_dir: Path) -> list[str]:
    """`reward-search status`: the untrained line of `finalize.json`, when finalize has run."""
    try:
        outcome = json.loads((run_dir / "finalize.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return outcome_lines(outcome) if isinstance(outcome, dict) else []
