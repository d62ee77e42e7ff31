"""Orchestration cost of the search: Tune + searcher + leaderboard + proposing, with trials that only sleep.

1. Overhead per trial: 16 no-op trials through the search driver (evolutionary proposer, sandbox validation,
   leaderboard actor) against the same 16 no-op trials through a bare `tune.Tuner`, on 8 logical GPUs.
2. Makespan of 32 trials of known, varied durations (10-30 s; real screening trials last minutes) on a simulated
   cluster of 8 logical GPUs, against the ideal max(sum/8, longest): scheduling efficiency (target >= 0.9), next to
   a bare `tune.Tuner` running the same 32 durations (what Tune itself costs on this machine).
3. GPU-idle fraction of the barrier, async and steady modes: 4 rounds x 8 candidates on 8 logical GPUs with
   log-normal durations.

Like for like: every arm runs one duration list, indexed by the trial's hand-out position (round by round, index
within the round), which each trial takes from a counter actor; the bare-Tune baseline runs the same list.

Prints the figures and writes benchmarks/results/search_overhead.json.
    .venv/bin/python benchmarks/search_overhead.py
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
SMOKE = REPO / "experiments" / "smoke.yaml"


def duration_list(count: int, kind: str, seed: int = 7) -> list[float]:
    """Deterministic durations by hand-out position: uniform 10-30 s, log-normal (median 4 s, sigma 0.6, cap 20 s),
    or none (no-op trials)."""
    rng = random.Random(seed)
    if kind == "uniform":
        return [10.0 + 20.0 * rng.random() for _ in range(count)]
    if kind == "lognormal":
        return [min(20.0, 4.0 * math.exp(0.6 * rng.gauss(0.0, 1.0))) for _ in range(count)]
    return [0.0] * count


class Ticket:
    """Hands out hand-out positions 0, 1, 2, ... to the trials of one arm."""

    def __init__(self) -> None:
        self.value = -1

    def next(self) -> int:
        self.value += 1
        return self.value


def sleeping_trainable(params: dict) -> None:
    """Sleeps for the duration at its hand-out position, logs (start, end), reports a final result."""
    import ray
    from ray import tune

    folder = Path(params["config"]["run"]["storage_path"])
    times = json.loads((folder / "durations.json").read_text())
    k = ray.get(ray.get_actor("overhead-ticket", namespace="search-overhead").next.remote())
    seconds = times[k % len(times)]
    start = time.time()
    time.sleep(seconds)
    with (Path(params["config"]["run"]["storage_path"]) / "spans.jsonl").open("a") as handle:
        handle.write(json.dumps({"start": start, "end": time.time(), "seconds": seconds}) + "\n")
    tune.report({"final": True, "status": "done", "selection_accuracy": 0.0, "selection_n": 1, "selection_correct": 0})


def run_search(folder: Path, name: str, gpus: int, rounds: int, per_round: int, mode: str, times: list[float]) -> dict:
    import ray

    from reward_search.config import load_config
    from reward_search.search.driver import run_search as drive

    (folder / "durations.json").write_text(json.dumps(times))
    ticket = ray.remote(num_cpus=0)(Ticket).options(name="overhead-ticket", namespace="search-overhead").remote()

    config = load_config(
        SMOKE,
        [
            f"run.storage_path={folder}",
            f"run.name={name}",
            f"search.rounds={rounds}",
            f"search.candidates_per_round={per_round}",
            f"search.mode={mode}",
            "search.gpus_per_trial=1",
            "search.cpus_per_trial=0",
            "search.dashboard=false",
            "finalize.enabled=false",
        ],
    )
    started = time.time()
    drive(config, address="auto", trainable=sleeping_trainable, verbose=False)
    wall = time.time() - started
    ray.kill(ticket)
    spans = [json.loads(line) for line in (folder / "spans.jsonl").read_text().splitlines()]
    (folder / "spans.jsonl").unlink()
    first = min(s["start"] for s in spans)
    last = max(s["end"] for s in spans)
    busy = sum(s["seconds"] for s in spans)
    ideal = max(busy / gpus, max(s["seconds"] for s in spans))
    return {
        "trials": len(spans),
        "wall_seconds": round(wall, 2),
        "makespan_seconds": round(last - first, 2),
        "ideal_seconds": round(ideal, 2),
        "efficiency": round(ideal / (last - first), 3),
        "gpu_idle_fraction": round(1 - busy / (gpus * (last - first)), 3),
    }


def bare_makespan(durations: list[float], gpus: int) -> dict:
    """The same sleeping trials through a bare Tuner (no searcher, no leaderboard): Tune's own efficiency here."""
    from ray import tune

    def sleeper(params: dict) -> None:
        start = time.time()
        time.sleep(params["seconds"])
        tune.report({"start": start, "end": time.time()})

    grid = tune.Tuner(
        tune.with_resources(sleeper, {"cpu": 0, "gpu": 1}),
        param_space={"seconds": tune.grid_search(durations)},
        run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(), verbose=0),
    ).fit()
    spans = [r.metrics for r in grid]
    makespan = max(s["end"] for s in spans) - min(s["start"] for s in spans)
    ideal = max(sum(durations) / gpus, max(durations))
    return {
        "makespan_seconds": round(makespan, 2),
        "ideal_seconds": round(ideal, 2),
        "efficiency": round(ideal / makespan, 3),
    }


def bare_tune(count: int) -> float:
    from ray import tune

    def noop(params: dict) -> None:
        tune.report({"final": True})

    started = time.time()
    tune.Tuner(
        tune.with_resources(noop, {"cpu": 0, "gpu": 1}),
        param_space={"i": tune.grid_search(list(range(count)))},
        run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(), verbose=0),
    ).fit()
    return time.time() - started


def main() -> int:
    import warnings

    import ray

    warnings.filterwarnings("ignore")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    report: dict = {"benchmark": "search_overhead", "cpus": os.cpu_count()}
    ray.init(address="local", num_cpus=4, num_gpus=8, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            bare = bare_tune(16)
            ours = run_search(
                folder, "none-overhead", gpus=8, rounds=1, per_round=16, mode="barrier", times=duration_list(16, "none")
            )
            report["overhead"] = {
                "trials": 16,
                "bare_tune_seconds_per_trial": round(bare / 16, 3),
                "search_seconds_per_trial": round(ours["wall_seconds"] / 16, 3),
                "added_seconds_per_trial": round((ours["wall_seconds"] - bare) / 16, 3),
                "note": "search time includes proposing and sandbox-validating each candidate",
            }
            print(json.dumps(report["overhead"], indent=2))
            durations = duration_list(32, "uniform")
            report["makespan"] = run_search(
                folder, "uniform-makespan", gpus=8, rounds=1, per_round=32, mode="barrier", times=durations
            )
            report["makespan"]["target"] = "efficiency >= 0.9"
            report["makespan"]["bare_tune"] = bare_makespan(durations, gpus=8)
            report["makespan"]["efficiency_vs_bare_tune"] = round(
                report["makespan"]["efficiency"] / report["makespan"]["bare_tune"]["efficiency"], 3
            )
            print(json.dumps(report["makespan"], indent=2))
            times = duration_list(32, "lognormal")
            arms = {
                mode: run_search(folder, f"lognormal-{mode}", gpus=8, rounds=4, per_round=8, mode=mode, times=times)
                for mode in ("barrier", "async", "steady")
            }
            report["barrier_vs_async"] = {
                **arms,
                "idle_ratio": round(
                    arms["async"]["gpu_idle_fraction"] / max(arms["barrier"]["gpu_idle_fraction"], 1e-9), 3
                ),
                "steady_idle_ratio": round(
                    arms["steady"]["gpu_idle_fraction"] / max(arms["barrier"]["gpu_idle_fraction"], 1e-9), 3
                ),
            }
            print(json.dumps(report["barrier_vs_async"], indent=2))
    finally:
        ray.shutdown()
    out = RESULTS / "search_overhead.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"scheduling efficiency {report['makespan']['efficiency']} (target >= 0.9); GPU idle barrier "
        f"{report['barrier_vs_async']['barrier']['gpu_idle_fraction']} vs async "
        f"{report['barrier_vs_async']['async']['gpu_idle_fraction']}; wrote {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
