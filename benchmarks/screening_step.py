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


def step_costs(preset: str, steps: int, overrides: list[str]) -> dict:
    from reward_search.candidates.candidate import RewardCandidate
    from reward_search.config import load_config
    from reward_search.task import get_task
    from reward_search.training.generation import GenerationTimer
    from reward_search.training.spec import RewardSpec
    from reward_search.training.trainer import build_session

    config = load_config(REPO / "experiments" / f"{preset}.yaml", [f"training.steps={steps}", *overrides])
    spec = RewardSpec((RewardCandidate.from_source(REWARD.read_text()),))
    task = get_task(config.data)
    with tempfile.TemporaryDirectory() as folder:
        session = build_session(config, spec, task, task.load_splits(), Path(folder))
        # inside TRL's generation only: a callback's dev evaluation (model.generate too) stays out of the split
        timer = GenerationTimer(session.trainer)
        started = time.perf_counter()
        try:
            session.trainer.train()
        finally:
            session.close()
        total = time.perf_counter() - started
        rows = session.recorder.rows
    step_times = [r["step_time"] for r in rows]
    generation = timer.total_seconds
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
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)
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


def disk_per_trial() -> dict:
    """Bytes one real demo-preset trial (embedded SmolLM2-135M) puts on disk as a Tune trial with the run's retention:
    the peak while it trains (trial folder + Tune's storage, polled) and what stays when it ends."""
    import threading

    import ray
    from ray import tune

    from reward_search.candidates.candidate import RewardCandidate
    from reward_search.config import load_config
    from reward_search.training.retention import DropCheckpointsWhenDone, checkpoint_config, folder_bytes
    from reward_search.training.spec import RewardSpec
    from reward_search.training.trainable import screening_trainable, trial_params

    config = load_config(REPO / "experiments" / "demo-gsm8k.yaml", ["training.report_every=1"])  # a checkpoint a step
    spec = RewardSpec((RewardCandidate.from_source(REWARD.read_text()),))
    with tempfile.TemporaryDirectory() as folder:
        trial, storage = Path(folder) / "trial", Path(folder) / "tune"
        peak, checkpoint, done = [0], [0], threading.Event()

        def poll() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], folder_bytes(trial) + folder_bytes(storage))
                for found in storage.rglob("checkpoint_*"):
                    checkpoint[0] = max(checkpoint[0], folder_bytes(found))
                time.sleep(0.1)

        ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        try:
            grid = tune.Tuner(
                tune.with_resources(screening_trainable, {"cpu": os.cpu_count() or 1}),
                param_space=trial_params(config, spec, str(trial)),
                run_config=tune.RunConfig(
                    storage_path=str(storage),
                    name="disk",
                    verbose=0,
                    checkpoint_config=checkpoint_config(config.run),
                    callbacks=[DropCheckpointsWhenDone(config.run.keep_checkpoints_after_trial)],
                ),
            ).fit()
        finally:
            done.set()
            poller.join()
            ray.shutdown()
        if grid[0].error:
            raise RuntimeError(f"the Tune trial failed: {grid[0].error}")
        kept = {p.name: folder_bytes(p) if p.is_dir() else p.stat().st_size for p in trial.iterdir()}
        final = sum(kept.values())
        tune_left = sum(p.stat().st_size for p in storage.rglob("*") if p.is_file() and "checkpoint_" in str(p))
    steps = config.training.steps
    return {
        "preset": "demo",
        "steps": steps,
        "checkpoints": steps,
        "checkpoint_bytes": checkpoint[0],
        "peak_bytes": peak[0],
        "final_bytes": final,
        "final_files": kept,
        "tune_checkpoint_bytes_left": tune_left,
        # before: each checkpoint in the trial folder (TRL kept 2) and again in Tune's storage (all kept)
        "before_final_bytes_estimate": final + (min(2, steps) + steps) * checkpoint[0],
    }


def paper_lora_size() -> dict:
    """The paper preset's LoRA (Llama-3.2-3B, r and modules from experiments/paper.yaml) counted on a meta-device
    model (no weights), and what one checkpoint of it holds: adapter + AdamW state."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    from reward_search.config import load_config
    from reward_search.training.models import _architecture

    config = load_config(REPO / "experiments" / "paper.yaml")
    arch = dict(_architecture("llama-3.2-3b"))
    arch.pop("architectures", None)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(arch.pop("model_type"), **arch))
    lora = config.training.lora
    peft_model = get_peft_model(
        model, LoraConfig(r=lora.r, lora_alpha=lora.alpha, target_modules=list(lora.target_modules))
    )
    params = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    adapter = params * 4  # peft keeps (and saves) adapter weights in fp32 over a bf16 base
    optimizer = {"adamw_8bit": 2 * params, "adamw_torch": 2 * params * 4}
    per_trial = config.training.steps // config.training.report_every
    return {
        "model": "llama-3.2-3b",
        "lora_r": lora.r,
        "target_modules": list(lora.target_modules),
        "lora_params": params,
        "adapter_bytes": adapter,
        "checkpoint_bytes": {name: adapter + state for name, state in optimizer.items()},
        "optimizer": config.training.optimizer,
        "checkpoints_per_trial": per_trial,
        "kept_during_trial_bytes": (adapter + optimizer[config.training.optimizer]) * config.run.keep_checkpoints,
        "kept_after_trial_bytes": adapter,
        "before_per_trial_bytes": adapter + (2 + per_trial) * (adapter + optimizer[config.training.optimizer]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke-steps", type=int, default=6)
    parser.add_argument("--demo-steps", type=int, default=2)
    parser.add_argument("--tune-steps", type=int, default=12)
    parser.add_argument("--only-tune", action="store_true", help="rerun only the Tune-overhead part")
    parser.add_argument("--only-disk", action="store_true", help="rerun only the disk part (bytes per trial)")
    parser.add_argument("--only-steps", action="store_true", help="rerun only the step costs (smoke and demo)")
    parser.add_argument("--out", default=str(RESULTS / "screening_step.json"))
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import warnings

    warnings.filterwarnings("ignore")
    report = {"benchmark": "screening_step", "device": "cpu", "cpus": os.cpu_count(), "platform": platform.platform()}
    if (args.only_tune or args.only_disk or args.only_steps) and Path(args.out).is_file():
        report = {**json.loads(Path(args.out).read_text()), **report}
    if args.only_steps:
        import torch

        report["step_threads"] = torch.get_num_threads()
        report["step_timer"] = "generation timed inside TRL's _generate_single_turn (not the dev evaluation)"
        for preset, steps, extra in (
            ("smoke", args.smoke_steps, ["training.max_completion_length=48"]),
            ("demo", args.demo_steps, []),
        ):
            report[preset] = step_costs(preset, steps, extra)
            print(json.dumps(report[preset], indent=2))
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        return 0
    if args.only_disk:
        report["disk"] = {"demo_trial": disk_per_trial(), "paper_lora": paper_lora_size()}
        print(json.dumps(report["disk"], indent=2))
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        return 0
    if not args.only_tune:
        report["smoke"] = step_costs("smoke", args.smoke_steps, ["training.max_completion_length=48"])
        print(json.dumps(report["smoke"], indent=2))
        report["demo"] = step_costs("demo", args.demo_steps, [])
        print(json.dumps(report["demo"], indent=2))
    report["tune_overhead"] = tune_overhead(args.tune_steps, cpus=os.cpu_count() or 1)
    print(json.dumps(report["tune_overhead"], indent=2))
    report["gpu"] = "this CPU script measures no GPU: the GPU figures are in gpu_screening.json"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"Tune/direct training-time ratio {report['tune_overhead']['train_seconds_ratio']} (target <= 1.10); "
        f"wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
