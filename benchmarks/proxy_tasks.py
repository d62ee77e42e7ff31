"""The measurements that choose the proxy tasks and their settings (issue "The search, shown to work", item 1).

For each proxy family (experiments/proxy-<family>.yaml), through the real CLI a user runs:
1. the untrained embedded model on the dev questions under the preset's own eval (strict and flexible), and with
   a longer generation budget (`--ability-tokens`) to show what it can do once it is not cut off;
2. `reward-search screen --base-only` (the baseline) and `reward-search screen --reward R` for each hand-written
   reward in benchmarks/proxy_rewards/: strict and flexible dev accuracy after training, seconds per step and
   per trial;
3. each trained row against the baseline and against the untrained model, paired by question (McNemar and a paired
   bootstrap CI of the accuracy difference).

The machine's load average is recorded beside every timing: on a shared machine seconds are upper bounds.

    .venv/bin/python benchmarks/proxy_tasks.py [--families sums,story] [--rewards clean_solution,...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
REWARDS = REPO / "benchmarks" / "proxy_rewards"
CLI = [sys.executable, "-m", "reward_search.cli"]


def run_cli(args: list[str], out: Path) -> tuple[dict[str, Any], float | None]:
    """One CLI command with --json; its decoded output and wall seconds (a failure stops the benchmark). An
    evaluation already written to `out` is read back (a rerun of the benchmark redoes only what it lacks; `screen`
    itself returns a finished trial from its folder)."""
    done_before = out / "metrics.json"
    if args[0] == "evaluate" and done_before.exists():
        return json.loads(done_before.read_text(encoding="utf-8")), None  # not timed again
    started = time.perf_counter()
    done = subprocess.run([*CLI, *args, "--json", "--no-progress", "--out", str(out)], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(args[:3])}: exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout), seconds


def correctness(folder: Path, mode: str) -> dict[int, bool]:
    """Per-question correctness under `mode` from an evaluation's records (evaluate or a trial's selection)."""
    import pyarrow.parquet as pq

    name = "records.parquet" if (folder / "records.parquet").exists() else "selection.parquet"
    rows = pq.read_table(folder / name).to_pylist()
    return {int(r["index"]): bool(r[f"correct_{mode}"]) for r in rows}


def paired(first: dict[int, bool], second: dict[int, bool]) -> dict[str, Any]:
    """McNemar and a paired bootstrap CI of first - second, on the questions both cover."""
    from reward_search.analysis.bootstrap import paired_difference
    from reward_search.analysis.mcnemar import mcnemar_test

    keys = sorted(set(first) & set(second))
    a, b = [first[k] for k in keys], [second[k] for k in keys]
    test = mcnemar_test(a, b)
    diff = paired_difference(a, b)
    return {
        "n": len(keys),
        "difference": round(sum(a) / len(a) - sum(b) / len(b), 4),
        "ci95_bca": [round(diff.accuracy.bca.low, 4), round(diff.accuracy.bca.high, 4)],
        "mcnemar_p": round(test.p_value, 5),
        "discordant": [test.b, test.c],
    }


def accuracies(metrics: dict[str, Any]) -> dict[str, float]:
    modes = metrics.get("by_mode", {})
    return {mode: modes[mode]["accuracy"] for mode in ("strict", "flexible") if mode in modes}


def trial_row(result: dict[str, Any]) -> dict[str, Any]:
    """A screening trial's accuracies and seconds, from its TrialResult."""
    steps = max(1, int(result.get("steps") or 0))
    return {
        "accuracy": accuracies(result["metrics"]),
        "steps": result.get("steps"),
        "seconds_per_step": round(float(result.get("train_seconds") or 0) / steps, 2),
        "trial_seconds": round(float(result.get("wall_seconds") or 0), 1),
    }


def family_rows(family: str, rewards: list[str], ability_tokens: int, work: Path) -> dict[str, Any]:
    """Untrained, baseline and each hand-written reward on one family's dev questions."""
    preset = str(REPO / "experiments" / f"proxy-{family}.yaml")
    folder = work / family
    rows: dict[str, Any] = {}
    load = os.getloadavg()[0]
    metrics, seconds = run_cli(["evaluate", preset], folder / "untrained")
    timed = seconds and round(seconds, 1)
    rows["untrained"] = {"accuracy": accuracies(metrics), "seconds": timed, "load": timed and round(load, 1)}
    if ability_tokens:
        metrics, seconds = run_cli(["evaluate", preset, "--max-new-tokens", str(ability_tokens)], folder / "ability")
        rows["untrained_long"] = {"accuracy": accuracies(metrics), "max_new_tokens": ability_tokens, "seconds": seconds}
    arms = {"baseline": ["--base-only"], **{name: ["--reward", str(REWARDS / f"{name}.py")] for name in rewards}}
    for name, extra in arms.items():
        load = os.getloadavg()[0]
        result, _ = run_cli(["screen", preset, *extra], folder / name)
        rows[name] = trial_row(result) | {
            "train_seconds": round(float(result.get("train_seconds") or 0), 1),
            "eval_seconds": round(float(result.get("eval_seconds") or 0), 1),
            "load": None if result.get("cached") else round(load, 1),  # a cached trial was timed at another load
        }
    for mode in ("strict", "flexible"):
        untrained, baseline = correctness(folder / "untrained", mode), correctness(folder / "baseline", mode)
        for name in ("baseline", *rewards):
            mine = correctness(folder / name, mode)
            rows[name].setdefault("vs_untrained", {})[mode] = paired(mine, untrained)
            if name != "baseline":
                rows[name].setdefault("vs_baseline", {})[mode] = paired(mine, baseline)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="sums,story")
    parser.add_argument("--rewards", default="clean_solution,short_last_number,longer_is_better")
    parser.add_argument("--ability-tokens", type=int, default=0, help="also evaluate the untrained model so long")
    parser.add_argument("--work", type=Path, default=Path("/tmp/proxy_tasks"))
    parser.add_argument("--out", type=Path, default=RESULTS / "proxy_tasks.json")
    parser.add_argument("--note", default="", help="a sentence stored with the figures")
    parser.add_argument("--extra", action="append", default=[], metavar="NAME=TRIAL_DIR", help="also list a trial")
    args = parser.parse_args()
    rewards = [r for r in args.rewards.split(",") if r]
    started = time.time()
    names = args.families.split(",")
    with ThreadPoolExecutor(len(names)) as pool:  # one family per core: each CLI process trains on one thread
        futures = {name: pool.submit(family_rows, name, rewards, args.ability_tokens, args.work) for name in names}
        families = {name: future.result() for name, future in futures.items()}
    for family, rows in families.items():
        for name, row in rows.items():
            accuracy = row["accuracy"]
            print(f"{family:12s} {name:18s} strict {accuracy.get('strict')} flexible {accuracy.get('flexible')}")
    extra = {}
    for item in args.extra:  # earlier trial folders measured with other settings, e.g. the zero-shot prompt
        name, folder = item.split("=", 1)
        extra[name] = trial_row(json.loads((Path(folder) / "result.json").read_text(encoding="utf-8")))
    report = {
        "benchmark": "proxy_tasks",
        "machine": {"cpus": os.cpu_count(), "load_at_end": round(os.getloadavg()[0], 1)},
        "note": args.note,
        "wall_seconds": round(time.time() - started, 1),
        "families": families,
        "extra_trials": extra,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
