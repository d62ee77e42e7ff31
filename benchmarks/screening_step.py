"""Screening-step cost on CPU, and the overhead of running a screening as a Ray Tune trial.

1. Seconds per GRPO step, split into generation and update, and peak RSS, for the smoke preset (tiny model) and
   the demo preset (embedded SmolLM2-135M), base rewards + one sandboxed candidate.
2. The same smoke-preset screening run directly and as a one-trial `tune.Tuner` run with the same CPUs: the ratio of
   training seconds (measured inside the run, so Ray's fixed start-up is reported separately). Target <= 1.10.

Prints the figures and writes benchmarks/results/screening_step.json. GPU figures (random-init Llama-3.2-3B with the
paper's batch) need a GPU machine and are not measured by this CPU script.

    .venv/bin/python benchmarks/screening_step.py [--demo-steps 2] [--tune-steps 12]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
REWARD = REPO / "examples" / "rewards" / "numeric_closeness.py"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_generate(model) -> list[float]:
    """Wrap the model's generate so each call's seconds are recorded (generation vs update split)."""
    calls: list[float] = []
    original = model.generate

    def generate(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            calls.append(time.perf_counter() - started)

    model.generate = generate
    return calls


def step_costs(preset: str, steps: int, overrides: list[str]) -> dict:
    from reward_search.candidates.candidate import RewardCandidate
    from reward_search.config import load_config
    from reward_search.task.gsm8k import get_task
    from reward_search.training.screening import build_session
    from reward_search.training.spec import RewardSpec

    config = load_config(REPO / "experiments" / f"{preset}.yaml", [f"training.steps={steps}", *overrides])
    spec = RewardSpec((RewardCandidate.from_source(REWARD.read_text()),))
    task = get_task(config.data)
    with tempfile.TemporaryDirectory() as folder:
        session = build_session(config, spec, task, task.load_splits(), Path(folder))
        calls = timed_generate(session.trainer.model)
        started = time.perf_counter()
        try:
            session.trainer.train()
        finally:
            session.close()
        total = time.perf_counter() - started
        rows = session.recorder.rows
    step_times = [r["step_time"] for r in rows]
    generation = sum(calls)
    t = config.training
    return {
        "preset": preset,
        "model": config.model.spec,
        "steps": steps,
        "batch": f"{t.prompts_per_step} prompts x {t.generations_per_prompt} generations x "
        f"{t.max_completion_length} tokens",
        "seconds_per_step": round(sum(step_times) / len(step_times), 3),
        "generation_seconds_per_step": round(generation / steps, 3),
        "update_seconds_per_step": round((sum(step_times) - generation) / steps, 3),
        "wall_seconds": round(total, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def tune_overhead(steps: int, cpus: int) -> dict:
    import ray
    from ray import tune

    from reward_search.candidates.candidate import RewardCandidate
    from reward_search.config import load_config
    from reward_search.training.screening import run_screening
    from reward_search.training.spec import RewardSpec
    from reward_search.training.trainable import screening_trainable, trial_params

    overrides = [f"training.steps={steps}", "training.max_completion_length=96", "training.report_every=4"]
    config = load_config(REPO / "experiments" / "smoke.yaml", overrides)
    spec = RewardSpec((RewardCandidate.from_source(REWARD.read_text()),))
    with tempfile.TemporaryDirectory() as folder:
        warm = load_config(REPO / "experiments" / "smoke.yaml", ["training.steps=2"])
        run_screening(warm, spec, Path(folder) / "warm-up", progress=False)  # first-use costs out of the timing
        started = time.perf_counter()
        direct = run_screening(config, spec, Path(folder) / "direct", progress=False)
        direct_wall = time.perf_counter() - started

        started = time.perf_counter()
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - started
        try:
            started = time.perf_counter()
            tuner = tune.Tuner(
                tune.with_resources(screening_trainable, {"cpu": cpus}),
                param_space=trial_params(config, spec, str(Path(folder) / "tune-trial")),
                run_config=tune.RunConfig(storage_path=str(Path(folder) / "tune"), name="bench", verbose=0),
            )
            grid = tuner.fit()
            tune_wall = time.perf_counter() - started
        finally:
            ray.shutdown()
        trial = json.loads((Path(folder) / "tune-trial" / "result.json").read_text())
    if grid[0].error:
        raise RuntimeError(f"the Tune trial failed: {grid[0].error}")
    ratio = trial["train_seconds"] / direct.train_seconds
    return {
        "steps": steps,
        "cpus": cpus,
        "direct_train_seconds": direct.train_seconds,
        "tune_train_seconds": trial["train_seconds"],
        "train_seconds_ratio": round(ratio, 3),
        "direct_wall_seconds": round(direct_wall, 2),
        "tune_wall_seconds": round(tune_wall, 2),
        "fixed_startup_seconds": round(tune_wall - trial["train_seconds"] - trial["eval_seconds"], 2),
        "ray_init_seconds": round(ray_start, 2),
        "target": "train_seconds_ratio <= 1.10",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke-steps", type=int, default=6)
    parser.add_argument("--demo-steps", type=int, default=2)
    parser.add_argument("--tune-steps", type=int, default=12)
    parser.add_argument("--only-tune", action="store_true", help="rerun only the Tune-overhead part")
    parser.add_argument("--out", default=str(RESULTS / "screening_step.json"))
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import warnings

    warnings.filterwarnings("ignore")
    report = {"benchmark": "screening_step", "device": "cpu", "cpus": os.cpu_count(), "platform": platform.platform()}
    if args.only_tune and Path(args.out).is_file():
        report = {**json.loads(Path(args.out).read_text()), **report}
    else:
        report["smoke"] = step_costs("smoke", args.smoke_steps, ["training.max_completion_length=48"])
        print(json.dumps(report["smoke"], indent=2))
        report["demo"] = step_costs("demo", args.demo_steps, [])
        print(json.dumps(report["demo"], indent=2))
    report["tune_overhead"] = tune_overhead(args.tune_steps, cpus=os.cpu_count() or 1)
    print(json.dumps(report["tune_overhead"], indent=2))
    report["gpu"] = "not measured: this run had no GPU (the device machine was not lent to this task)"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"Tune/direct training-time ratio {report['tune_overhead']['train_seconds_ratio']} (target <= 1.10); "
        f"wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
