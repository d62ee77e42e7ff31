"""Does the search find better rewards than chance? Guided vs unguided vs baseline vs untrained, with decoys.

Each search arm runs through the real path, one `reward-search run` per seed (driver, Tune, sandbox, leaderboard,
finalize), with the same candidate budget and training config:

- guided: the evolutionary proposer reading the ranked feedback (`proposer.feedback: rich`);
- unguided: the same proposer and seeds with the feedback withheld (`proposer.feedback: none`);
- llm: the LLM proposer, only when `--api-base` and `--model` name a server;
- baseline (base rewards only) and untrained (no training): the rows every run's finalize phase writes.

The four decoys in `benchmarks/decoys/` are planted in round 1 of every search arm (`proposer.planted`) and go
through the same validation and screening. Every screened candidate is also evaluated on test
(`training.eval_test`), only so that the dev-to-test rank correlation can be measured: the search ranks on dev and
never reads those numbers. The arms share one trial folder (`trials/` is keyed by everything that makes a trial
train differently, never by the run), so a trial two arms have in common (round 1 of guided and unguided, the
decoys, the baseline) trains once. The proposer seed varies per seed; the training seed (`run.seed`) stays fixed.

    python benchmarks/search_quality.py --preset experiments/proxy-sums.yaml            # 3 seeds
    python benchmarks/search_quality.py --preset experiments/proxy-sums.yaml --quick    # 1 seed, fewer candidates
    python benchmarks/search_quality.py --task train.jsonl --dev dev.jsonl --test test.jsonl --smoke

Writes benchmarks/results/search_quality[_quick|_smoke].json (`--out`) and a PNG beside it. A task file it cannot
use stops it with one line naming the file and the reason (exit 2) before Ray starts.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reward_search import io  # noqa: E402
from reward_search.analysis.quality import (  # noqa: E402
    arm_comparison,
    best_row,
    control_gaps,
    decoy_table,
    dev_test_correlation,
    paired_test,
    quality_figure,
    round_curves,
    rows_from_entries,
)
from reward_search.config import ExperimentConfig, dump_config, load_config  # noqa: E402
from reward_search.errors import DataError, UserError  # noqa: E402
from reward_search.task.jsonl import read_problems  # noqa: E402
from reward_search.task.splits import question_key  # noqa: E402

DECOYS = REPO / "benchmarks" / "decoys"
# Ray gives its raylet 30 s to register; on a host loaded far beyond its cores that fails before anything ran, and
# the same command continues the run directory where it stopped.
RAY_START_TIMEOUT = "The current node timed out during startup"
RAY_START_RETRIES = 2
PRIVATE_RAY = "REWARD_SEARCH_QUALITY_PRIVATE_RAY"  # set when the benchmark made RAY_TMPDIR (and removes it)
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_BASE = {"smoke": REPO / "experiments" / "smoke.yaml", "other": REPO / "experiments" / "demo.yaml"}
# Per mode: seeds, rounds, candidates per round (round 1 holds the decoys that pass validation) and the fewest
# dev and test questions a comparison is worth making on (the config's selection_size / test_size when larger).
MODES = {
    "full": {"seeds": 3, "rounds": 3, "candidates": 6, "min_dev": 20, "min_test": 20},
    "quick": {"seeds": 1, "rounds": 2, "candidates": 4, "min_dev": 20, "min_test": 20},
    "smoke": {"seeds": 1, "rounds": 1, "candidates": 3, "min_dev": 4, "min_test": 4},
}
SMOKE_SETTINGS = (  # seconds per trial: the tiny random model, one GRPO step, a handful of questions
    "model.spec=random:tiny",
    "training.steps=1",
    "training.report_every=1",
    "training.selection_size=4",
    "training.test_size=4",
    "training.eval_max_new_tokens=8",
    "training.max_completion_length=8",
    "search.max_concurrent_trials=2",
)


@dataclasses.dataclass(frozen=True)
class Arm:
    """One search arm: its name and the proposer keys that make it that arm."""

    name: str
    overrides: tuple[str, ...]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", help="experiment YAML the arms start from (default: demo.yaml; smoke.yaml)")
    parser.add_argument("--task", metavar="TRAIN.jsonl", help="a JSONL task's training questions")
    parser.add_argument("--dev", metavar="DEV.jsonl", help="its dev split (default: carved from train)")
    parser.add_argument("--test", metavar="TEST.jsonl", help="its test split (default: carved from train)")
    parser.add_argument("--seeds", type=int, help="seeds per search arm (default 3; --quick and --smoke: 1)")
    parser.add_argument("--rounds", type=int, help="search rounds per run (default: per mode)")
    parser.add_argument("--candidates", type=int, help="candidates per round (default: per mode)")
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument("--quick", action="store_true", help="one seed, fewer candidates (~15 min on 2 cores)")
    speed.add_argument("--smoke", action="store_true", help="tiny random model, one round: the test suite's run")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--api-base", help="an OpenAI-compatible server for the LLM proposer arm")
    parser.add_argument("--model", help="the LLM proposer's litellm model string, e.g. openai/qwen-coder")
    parser.add_argument("--no-decoys", action="store_true", help="plant no decoys")
    parser.add_argument("--work", help="where the run directories go (default runs/search_quality[_MODE])")
    parser.add_argument("--out", help="the JSON to write (default benchmarks/results/search_quality[_MODE].json)")
    args = parser.parse_args(argv)
    if not args.task and not args.preset:
        parser.error("give --task TRAIN.jsonl or --preset experiments/X.yaml")
    if args.seeds is not None and args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if bool(args.api_base) != bool(args.model):
        parser.error("the LLM arm needs both --api-base and --model")
    return args


def mode_of(args: argparse.Namespace) -> str:
    return "smoke" if args.smoke else "quick" if args.quick else "full"


def base_overrides(args: argparse.Namespace, decoys: list[Path]) -> list[str]:
    """The settings every arm shares: task, mode, budget, test records, finalize's controls, decoys, `--set`."""
    mode = MODES[mode_of(args)]
    keys = []
    if args.task:
        keys += ["data.source=jsonl", f"data.train_file={Path(args.task).resolve()}"]
        keys += [f"data.{k}_file={Path(v).resolve()}" for k, v in (("dev", args.dev), ("test", args.test)) if v]
    if args.smoke:
        keys += SMOKE_SETTINGS
    keys += [
        f"search.rounds={args.rounds or mode['rounds']}",
        f"search.candidates_per_round={args.candidates or mode['candidates']}",
        "search.dashboard=false",
        "training.eval_test=true",  # each candidate's test records: the dev-to-test correlation (never ranked on)
        "finalize.enabled=true",
        "finalize.recipes=[]",  # the best reward's test records come from its own screening trial
        "finalize.baseline=true",
        "finalize.random_control=false",
        "finalize.seeds=1",
        "finalize.controls_on_dev=true",
        "proposer.planted=[" + ",".join(str(p) for p in decoys) + "]",
    ]
    return [*keys, *args.overrides]


def arms(args: argparse.Namespace) -> list[Arm]:
    found = [
        Arm("guided", ("proposer.kind=evolutionary", "proposer.feedback=rich")),
        Arm("unguided", ("proposer.kind=evolutionary", "proposer.feedback=none")),
    ]
    if args.api_base:
        found.append(
            Arm("llm", ("proposer.kind=llm", f"proposer.model={args.model}", f"proposer.api_base={args.api_base}"))
        )
    return found


def arm_config(base: Path, overrides: list[str], arm: Arm, seed: int, work: Path) -> ExperimentConfig:
    run = [f"run.name={arm.name}-s{seed}", f"run.storage_path={work}", f"proposer.seed={seed}"]
    config = load_config(base, [*overrides, *arm.overrides, *run])
    return dataclasses.replace(config, data=absolute_files(config.data))


def absolute_files(data: Any) -> Any:
    """The task's files as absolute paths (trials run in Tune's trial folders): relative to the working directory,
    else to the repository (the shipped presets name `reward_search/task/data/...`)."""
    fields = {}
    for name in ("train_file", "dev_file", "test_file", "prompt_file"):
        value = getattr(data, name)
        if value and not Path(value).expanduser().is_absolute():
            here = Path(value).expanduser().resolve()
            fields[name] = str(here if here.exists() or not (REPO / value).exists() else REPO / value)
    return dataclasses.replace(data, **fields)


# --------------------------------------------------------------------------------------------------- bad input


def check_task(config: ExperimentConfig, mode: str) -> dict[str, Any]:
    """The task's splits, or a UserError naming the file and why the benchmark cannot use it (before Ray)."""
    from reward_search.task import get_task

    data, training = config.data, config.training
    files = {k: getattr(data, f"{k}_file") for k in ("train", "dev", "test")} if data.source == "jsonl" else {}
    given = {k: read_problems(v, f"{k}_file") for k, v in files.items() if v}  # a bad row: file:line and field
    if "dev" in given and "test" in given:
        test_keys = {question_key(p.question) for p in given["test"]}
        shared = [p.question for p in given["dev"] if question_key(p.question) in test_keys]
        if shared:
            raise UserError(
                f"{files['dev']}: {len(shared)} of its {len(given['dev'])} questions also occur in {files['test']} "
                f"(e.g. {shared[0][:60]!r}): the dev split must not overlap test"
            )
    try:
        splits = get_task(config).load_splits()
    except DataError as exc:
        raise UserError(str(exc)) from None
    limits = MODES[mode]
    needs = {
        "train": (training.prompts_per_step * training.steps, "training.prompts_per_step x training.steps"),
        "dev": (max(training.selection_size or 0, limits["min_dev"]), "training.selection_size"),
        "test": (max(training.test_size or 0, limits["min_test"]), "training.test_size"),
    }
    for split, (need, why) in needs.items():
        have = len(splits.get(split))
        if have < need:
            where = files.get(split) or files.get("train") or data.source
            raise UserError(
                f"{where}: the {split} split has {have} questions; the benchmark needs at least {need} ({why}, "
                f"or the {mode} minimum)"
            )
    return {name: info.size for name, info in splits.manifest.splits.items()}


# --------------------------------------------------------------------------------------------------- running


def ray_env(work: Path) -> dict[str, str]:
    """The environment of each run: a private local Ray (unless RAY_ADDRESS or RAY_TMPDIR is set already)."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    if not env.get("RAY_ADDRESS") and not env.get("RAY_TMPDIR"):
        env["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="rsq-", dir="/tmp")  # short: Ray's socket paths have a limit
        env[PRIVATE_RAY] = "1"
    return env


def run_arm(config: ExperimentConfig, work: Path, env: dict[str, str]) -> dict[str, Any]:
    """One `reward-search run` of one arm and seed, its trials in the shared `work/trials` folder."""
    run_dir = work / config.run.name
    run_dir.mkdir(parents=True, exist_ok=True)
    shared = work / "trials"
    shared.mkdir(exist_ok=True)
    link = run_dir / "trials"
    if not link.is_symlink() and not link.exists():
        link.symlink_to(shared, target_is_directory=True)
    spec = work / f"{config.run.name}.yaml"
    io.write_text(spec, dump_config(config))
    log = work / f"{config.run.name}.log"
    command = [sys.executable, "-m", "reward_search.cli", "run", str(spec), "--run-dir", str(run_dir)]
    started = time.time()
    with log.open("a", encoding="utf-8") as out:  # a rerun continues the run and its log: nothing earlier is lost
        out.write(
            f"=== search_quality: {' '.join(command[2:])} at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n"
        )
    for attempt in range(1 + RAY_START_RETRIES):
        with log.open("a", encoding="utf-8") as out:
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO, check=False)
        lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
        if done.returncode == 0 or not lines or RAY_START_TIMEOUT not in lines[-1] or attempt == RAY_START_RETRIES:
            break
        print(f"search_quality: {config.run.name}: Ray did not start (an overloaded host); again", file=sys.stderr)
    seconds = round(time.time() - started, 1)
    if done.returncode != 0:
        raise UserError(
            f"{config.run.name}: reward-search run exited {done.returncode}: {lines[-1] if lines else ''} ({log})",
            exit_code=1,
        )
    print(f"search_quality: {config.run.name} finished in {seconds:.0f} s", file=sys.stderr)
    return {"run": config.run.name, "run_dir": str(run_dir), "seconds": seconds, "log": str(log)}


def run_all(
    base: Path, overrides: list[str], chosen: list[Arm], seeds: list[int], work: Path, env: dict[str, str]
) -> list[dict[str, Any]]:
    """Every arm for every seed, in turn; each run's rows, test records and controls."""
    runs = []
    for seed in seeds:
        for arm in chosen:
            info = run_arm(arm_config(base, overrides, arm, seed, work), work, env)
            rows, frames, controls = read_run(Path(info["run_dir"]), arm.name, seed)
            info["statuses"] = check_run(info, rows)
            runs.append(
                {**info, "arm": arm.name, "seed": seed, "rows": rows, "frames": frames, "controls": controls}
                | {"best": best_row(rows)}
            )
    return runs


def check_run(info: dict[str, Any], rows: list[Any]) -> dict[str, int]:
    """The run's candidates by status; a run that screened none of them is an error naming its log (exit 1)."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    if not counts.get("done"):
        raise UserError(f"{info['run']}: no candidate was screened ({counts}); see {info['log']}", exit_code=1)
    if counts.get("failed") or counts.get("crashed"):
        print(f"search_quality: {info['run']}: {counts} (see {info['log']})", file=sys.stderr)
    return counts


# --------------------------------------------------------------------------------------------------- reading


def read_run(run_dir: Path, arm: str, seed: int) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """(candidate rows, test records per candidate id, the finalize controls' records and numbers) of one run."""
    from reward_search.analysis.rundata import load_run

    data = load_run(run_dir)
    frames = {}
    for entry in data.entries:
        if entry.status == "done":
            frame = data.trial_table(entry.trial_key, "test", entry.trial_dir)
            if frame is not None and len(frame):
                frames[entry.candidate_id] = frame
    tests = {cid: float(frame["correct"].mean()) for cid, frame in frames.items()}
    rows = rows_from_entries(arm, seed, data.entries, data.selection_metric, tests)
    controls = {}
    for job in data.jobs:
        if job.kind in ("baseline", "untrained") and job.done:
            records = data.job_records(job, "test")
            controls[job.kind] = {
                "records": records,
                "dev_accuracy": job.result.get("selection_accuracy"),
                **test_numbers(records),
                "source": "finalize.json",
            }
    return rows, frames, controls


def test_numbers(records: Any) -> dict[str, Any]:
    """Strict and flexible test accuracy from per-question records (None without records)."""
    if records is None or not len(records):
        return {"test_accuracy": None, "test_flexible_accuracy": None, "test_n": 0}
    flexible = records["correct_flexible"].mean() if "correct_flexible" in records else None
    return {
        "test_accuracy": float(records["correct"].mean()),
        "test_flexible_accuracy": None if flexible is None else float(flexible),
        "test_n": len(records),
    }


def evaluate_untrained(config: ExperimentConfig, work: Path) -> dict[str, Any]:
    """The base model without training under the trials' own eval (`training/trainer.eval_config`), on dev and
    test, through the project's evaluation path: the fallback when finalize.json has no `untrained` row."""
    import pandas as pd

    from reward_search.task import get_task
    from reward_search.training.evaluation import evaluate
    from reward_search.training.models import load_model
    from reward_search.training.trainer import eval_config

    task = get_task(config)
    splits = task.load_splits()
    t = config.training
    loaded = load_model(config.model.spec, config.model.dtype, "cpu", seed=config.run.seed)
    dev = splits.dev[: t.selection_size] if t.selection_size else splits.dev
    test = splits.test[: t.test_size] if t.test_size else splits.test
    settings = eval_config(config)
    on_dev = evaluate(loaded, task, dev, settings, False, t.generation)
    on_test = evaluate(loaded, task, test, settings, False, t.generation)
    io.write_parquet(work / "untrained" / "test.parquet", on_test.records)
    records = pd.DataFrame(on_test.records)
    return {
        "records": records,
        "dev_accuracy": on_dev.metrics.accuracy,
        **test_numbers(records),
        "source": "evaluated by the benchmark (finalize.json has no untrained row)",
    }


# --------------------------------------------------------------------------------------------------- results


def compare_with_controls(runs: list[dict[str, Any]], controls: dict[str, Any]) -> list[dict[str, Any]]:
    """Each run's best reward against the baseline and the untrained model on test, paired by question."""
    found = []
    for run in runs:
        best = run["best"]
        frame = run["frames"].get(best.candidate_id) if best is not None else None
        for name, control in controls.items():
            entry = {"arm": run["arm"], "seed": run["seed"], "best": best.name if best else None, "against": name}
            if frame is None or control.get("records") is None:
                entry["note"] = "no test records for the best reward or the control"
            else:
                try:
                    entry.update(paired_test(frame, control["records"], (best.name, name), seed=run["seed"]))
                except ValueError as exc:  # different questions: say so rather than pair by position
                    entry["note"] = str(exc)
            found.append(entry)
    return found


def summarize(runs: list[dict[str, Any]], controls: dict[str, Any], arm_names: list[str], png: Path) -> dict[str, Any]:
    """Every statistic of the JSON: curves, comparisons, decoys, correlation, and the figure."""
    rows = [row for run in runs for row in run["rows"]]
    curves = round_curves(rows)
    comparisons = [arm_comparison(rows, arm, "unguided") for arm in arm_names if arm != "unguided"]
    tests = {name: c.get("test_accuracy") for name, c in controls.items()}
    quality_figure(curves, {f"{k} (dev)": v.get("dev_accuracy") for k, v in controls.items()}, png)
    return {
        "round_curves": curves,
        "arm_comparisons": comparisons,
        "best_vs_controls": compare_with_controls(runs, controls),
        "best_minus_controls_over_seeds": {arm: control_gaps(rows, arm, tests) for arm in arm_names},
        "decoys": decoy_table(rows),
        "dev_test_spearman": {
            "all": dev_test_correlation(rows),
            **{arm: dev_test_correlation([r for r in rows if r.arm == arm]) for arm in arm_names},
        },
        "candidates": [row.to_dict() for row in rows],
    }


def _control_numbers(controls: dict[str, Any]) -> dict[str, Any]:
    return {name: {k: v for k, v in c.items() if k != "records"} for name, c in controls.items()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = mode_of(args)
    suffix = "" if mode == "full" else f"_{mode}"
    work = Path(args.work or REPO / "runs" / f"search_quality{suffix}").resolve()
    out = Path(args.out or RESULTS / f"search_quality{suffix}.json").resolve()
    base = Path(args.preset) if args.preset else DEFAULT_BASE["smoke" if args.smoke else "other"]
    decoys = [] if args.no_decoys else sorted(DECOYS.glob("*.py"))
    overrides = base_overrides(args, decoys)
    seeds = list(range(args.seeds or MODES[mode]["seeds"]))
    chosen = arms(args)
    first = arm_config(base, overrides, chosen[0], seeds[0], work)
    sizes = check_task(first, mode)  # before any Ray starts
    if args.api_base:
        from reward_search.proposers.endpoint import check_api_base

        check_api_base(args.api_base)  # a model server that is not there: one line, exit 2
    started, env = time.time(), ray_env(work)
    try:
        runs = run_all(base, overrides, chosen, seeds, work, env)
    finally:
        if env.get(PRIVATE_RAY):
            shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)  # the private Rays' session folders
    controls = dict(runs[0]["controls"])
    if "untrained" not in controls:
        controls["untrained"] = evaluate_untrained(first, work)
    stats = summarize(runs, controls, [a.name for a in chosen], out.with_suffix(".png"))
    report = {
        "benchmark": "search_quality",
        "mode": mode,
        "preset": str(base),
        "task": {
            "source": first.data.source,
            "train_file": first.data.train_file,
            "dev_file": first.data.dev_file,
            "test_file": first.data.test_file,
            "splits": sizes,
        },
        "model": first.model.spec,
        "arms": [a.name for a in chosen],
        "seeds": seeds,
        "budget": {
            "rounds": first.search.rounds,
            "candidates_per_round": first.search.candidates_per_round,
            "training_steps": first.training.steps,
            "decoys": [p.name for p in decoys],
        },
        "overrides": overrides,
        "candidates_on_test": "every screened candidate is evaluated on test (training.eval_test) for the "
        "dev-to-test correlation only; the search ranks on dev and never reads test",
        "controls": _control_numbers(controls),
        "runs": [
            {k: run[k] for k in ("arm", "seed", "run", "run_dir", "seconds", "statuses")}
            | {"best": run["best"].to_dict() if run["best"] else None}
            for run in runs
        ],
        **stats,
        "figure": str(out.with_suffix(".png")),
        "seconds": round(time.time() - started, 1),
    }
    io.write_json(out, report)
    print("\n".join(summary_lines(report)))
    print(f"search_quality: {out} ({report['seconds'] / 60:.1f} min)")
    return 0


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The figures a reader looks for first, one line each."""
    lines = [
        f"{name}: dev {_pct(c.get('dev_accuracy'))}, test {_pct(c.get('test_accuracy'))} strict, "
        f"{_pct(c.get('test_flexible_accuracy'))} flexible ({c.get('source')})"
        for name, c in report["controls"].items()
    ]
    for run in report["runs"]:
        best = run["best"] or {}
        lines.append(
            f"{run['run']}: best {best.get('name')} ({best.get('proposer')}) dev {_pct(best.get('dev_accuracy'))} "
            f"test {_pct(best.get('test_accuracy'))}"
        )
    for c in report["arm_comparisons"]:
        d = c["best_test_accuracy"]
        lines.append(f"{c['first']} - {c['second']} best test accuracy: {_pct(d['estimate'])} [{_pct(d['low'])}, "
                     f"{_pct(d['high'])}] over seeds {d['seeds']}: {d['verdict']}")  # fmt: skip
    for d in report["decoys"]:
        where = f"rank {d['rank']} of {d['of']}" if "rank" in d else "; ".join(d.get("reasons") or [d["status"]])
        lines.append(f"decoy {d['decoy']} ({d['arm']}, seed {d['seed']}): {where}")
    rho = report["dev_test_spearman"]["all"]
    lines.append(
        f"dev-test Spearman over {rho['n']} candidates: {rho['rho'] if rho['rho'] is not None else rho.get('note')}"
    )
    return lines


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as exc:
        print(f"search_quality.py: error: {exc}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 2))
