"""Latency of `reward-search submit` against `reward-search run` for the smoke experiment (CPU, local).

Starts a throwaway Ray head on loopback (its own temp dir and ports, authentication disabled), then times, from the
moment the command starts: the first trial running (the driver's first "round 1: <candidate> started" line) and the end
(`run` exiting; the job reaching SUCCEEDED through `submit --follow`). `run` starts its own local Ray, as a user
without a cluster would. Prints a table and writes benchmarks/results/submit_latency.json.

    .venv/bin/python benchmarks/submit_latency.py [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reward_search.testing.local_head import LocalHead

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "submit_latency.json"
FIRST_TRIAL = re.compile(r"round 1: \S+ started")  # SearchProgress's line when a trial starts


def timed(cmd: list[str], env: dict[str, str]) -> dict[str, float | int | None]:
    """Run `cmd`, reading its output line by line: seconds to the job id, to the first trial, to exit."""
    start = time.monotonic()
    marks: dict[str, float | int | None] = {"job_id_s": None, "first_trial_s": None}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        now = time.monotonic() - start
        if marks["job_id_s"] is None and line.startswith("job: "):
            marks["job_id_s"] = round(now, 2)
        if marks["first_trial_s"] is None and FIRST_TRIAL.search(line):
            marks["first_trial_s"] = round(now, 2)
    marks["returncode"] = proc.wait()
    marks["end_s"] = round(time.monotonic() - start, 2)
    return marks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    storage = Path(tempfile.mkdtemp(prefix="submit-latency-"))
    base = ["experiments/smoke.yaml", "--set", "search.dashboard=false", "--set", f"run.storage_path={storage}"]
    # Like for like: the job takes the whole throwaway head, as `run` takes its own local Ray (a shared cluster's
    # default is half of its slots, after a CPU for the driver).
    base += ["--set", "search.cluster_share=1.0", "--set", "search.driver_cpus=0"]
    for item in args.overrides:
        base += ["--set", item]
    cli = [sys.executable, "-m", "reward_search.cli"]

    started = time.monotonic()
    head = LocalHead(num_cpus=2, token=None).start()
    head_start_s = round(time.monotonic() - started, 2)
    try:
        env = head.env()
        direct_env = {k: v for k, v in env.items() if k != "RAY_AUTH_MODE"}  # `run` as a user would
        direct = timed([*cli, "run", *base, "--set", "run.name=bench-direct"], direct_env)
        submit = timed(
            [*cli, "submit", *base, "--set", "run.name=bench-submit", "--address", head.dashboard_url, "--follow"],
            env,
        )
    finally:
        head.stop()
    result = {
        "benchmark": "submit_latency",
        "head": "local, 2 CPUs, loopback, token authentication disabled",
        "experiment": "experiments/smoke.yaml",
        "overrides": args.overrides,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "ray": __import__("ray").__version__,
        "head_start_s": head_start_s,
        "run": direct,
        "submit": submit,
        "overhead_first_trial_s": (
            round(submit["first_trial_s"] - direct["first_trial_s"], 2)
            if submit["first_trial_s"] is not None and direct["first_trial_s"] is not None
            else None
        ),
        "overhead_end_s": round(submit["end_s"] - direct["end_s"], 2),
    }
    print(f"local head up in {head_start_s:.1f}s (not counted below)")
    print(f"{'':<28} {'job id':>8} {'first trial':>12} {'end':>8} {'rc':>3}")
    for name, row in (("reward-search run", direct), ("reward-search submit", submit)):
        job = "-" if row["job_id_s"] is None else f"{row['job_id_s']:.1f}s"
        first = "-" if row["first_trial_s"] is None else f"{row['first_trial_s']:.1f}s"
        print(f"{name:<28} {job:>8} {first:>12} {row['end_s']:>7.1f}s {row['returncode']:>3}")
    print(f"submit overhead: first trial {result['overhead_first_trial_s']}s, end {result['overhead_end_s']}s")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT}")
    return 0 if direct["returncode"] == 0 and submit["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
