"""GPU check of a screening run, without Ray, on one GPU, in at most 8 minutes.

Model: a random-init Llama-3.2-3B built from its config (no download), bf16, LoRA r=32 on the 7 projection
modules, the paper's batch (experiments/paper.yaml: 1 prompt x 4 completions), completions capped at 512 tokens
(random weights never stop), base rewards. Every trial runs the project's own screening code (build_session: TRL's
GRPOTrainer with the configured generation backend) in its own process.

1. Backends `hf` and `fast` (and `fast` with continuous batching): seconds per step split into generation (timed
   inside TRL's generation only) and update, generation tokens/s, peak GPU memory. The first step (compilation,
   warm-up) is reported apart.
2. Packing: 1, 2 and 4 trials as separate processes on the one GPU, each capped with
   torch.cuda.set_per_process_memory_fraction(1/k); they start their timed steps together (a file barrier);
   aggregate steps/s and the gain over one trial.
3. The memory cap: a process capped at 25% allocates until it is refused; the cap holds when it never got more.
4. Evaluation tokens/s at batch 1 and 64, LoRA unmerged versus merged into a copy.

Writes benchmarks/results/gpu_screening.json (after every stage, so a timeout keeps what finished) naming the
GPU. `--smoke` runs the same code on CPU with the tiny model in under 2 minutes (tests/test_gpu_screening_smoke.py).

    python benchmarks/gpu_screening.py [--smoke] [--out FILE] [--budget-s 450]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # runs from a bare checkout (the GPU image has no editable install)
RESULTS = REPO / "benchmarks" / "results"


@dataclass(frozen=True)
class Preset:
    model: str
    device: str
    dtype: str
    lora_r: int
    steps: int  # timed steps per backend trial (after one warm-up step)
    completion: int
    packing: tuple[int, ...]
    packing_steps: int
    packing_completion: int
    eval_batches: tuple[int, ...]
    eval_questions: tuple[int, ...]
    eval_tokens: int
    budget_s: float
    backends: tuple[str, ...] = ("hf", "fast", "fast:cb")


GPU = Preset("random:llama-3.2-3b", "cuda", "bfloat16", 32, 3, 512, (1, 2, 4), 2, 256, (1, 64), (2, 64), 256, 400)
SMOKE = Preset("random:tiny", "cpu", "float32", 8, 1, 16, (1, 2), 1, 16, (1, 8), (2, 8), 12, 110, ("hf", "fast"))
STAGES = ("backends", "memory_cap", "evaluation", "packing")  # in run order; fast:cb runs last, after them all
TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


# --------------------------------------------------------------------------------------------------- the model


def load_bench_model(preset: Preset, seed: int = 0) -> Any:
    """The random-init model built directly on its device and dtype, with the tiny GSM8K tokenizer (no download:
    ids beyond its 1,024 tokens decode to nothing, and the full vocabulary still costs its LM-head time)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from reward_search.training.models import LoadedModel, _architecture, pick_dtype, tiny_tokenizer_dir

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir())
    tokenizer.padding_side = "left"
    arch = dict(_architecture(preset.model.removeprefix("random:")))
    model_type = arch.pop("model_type")
    arch.pop("architectures", None)
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    config = AutoConfig.for_model(model_type, **arch, **ids, pad_token_id=tokenizer.pad_token_id)
    dtype = pick_dtype(preset.dtype, preset.device)
    torch.manual_seed(seed)
    with torch.device(preset.device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return LoadedModel(model, tokenizer, preset.model, f"random init ({preset.model})", preset.device)


@contextlib.contextmanager
def prebuilt(loaded: Any) -> Iterator[None]:
    """build_session loads its model through models.load_model; hand it the model built here instead."""
    from reward_search.training import models

    original = models.load_model
    models.load_model = lambda *args, **kwargs: loaded
    try:
        yield
    finally:
        models.load_model = original


def trial_config(preset: Preset, backend: str, completion: int, steps: int) -> Any:
    """experiments/paper.yaml (the paper's batch, LoRA and precision) on the shipped sample, for `steps` steps."""
    from reward_search.config import load_config

    overrides = [
        f"model.spec={preset.model}",
        f"model.device={preset.device}",
        f"model.dtype={preset.dtype}",
        "data.source=sample",
        "data.dev_size=20",
        f"training.steps={steps}",
        f"training.max_completion_length={completion}",
        f"training.generation={backend.split(':')[0]}",
        f"training.lora.r={preset.lora_r}",
        "training.optimizer=adamw_torch",  # bitsandbytes is not on the GPU image
        "training.report_every=100000",  # no checkpoints or dev evaluations inside the timed steps
        # one GPU (validation refuses cuda without GPUs); outside Ray the trial takes model.device as it is
        f"search.gpus_per_trial={1 if preset.device == 'cuda' else 0}",
    ]
    if preset.device == "cpu":
        overrides += ["training.precision=fp32", "training.gradient_checkpointing=false"]
    return load_config(REPO / "experiments" / "paper.yaml", overrides)


# --------------------------------------------------------------------------------------------------- one trial


def _barrier(folder: Path | None, index: int, count: int, timeout: float = 300.0) -> None:
    """Wait until all `count` packed trials have finished their warm-up step."""
    if folder is None:
        return
    (folder / f"ready-{index}").write_text("ok")
    deadline = time.time() + timeout
    while len(list(folder.glob("ready-*"))) < count and time.time() < deadline:
        time.sleep(0.05)


def _clock_callback(barrier: Path | None, index: int, count: int) -> Any:
    from transformers import TrainerCallback

    from reward_search.training.generation import _synchronize

    class StepClock(TrainerCallback):
        """Wall time of each step; after the first (warm-up) step, the packed trials wait for each other."""

        def __init__(self) -> None:
            self.steps: list[float] = []
            self.window: list[float] = []
            self.started = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            _synchronize()
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            _synchronize()
            self.steps.append(time.perf_counter() - self.started)
            if len(self.steps) == 1:
                _barrier(barrier, index, count)
            self.window.append(time.time())

    return StepClock()


def run_trial(spec: dict[str, Any]) -> dict[str, Any]:
    """One GRPO trial in this process: warm-up step, timed steps; step, generation and update seconds."""
    import torch

    from reward_search.task import get_task
    from reward_search.training.generation import FAST_VARIANT_ENV, GenerationTimer
    from reward_search.training.spec import RewardSpec
    from reward_search.training.trainer import build_session

    preset = Preset(**{**spec["preset"], "packing": tuple(spec["preset"]["packing"])})
    backend, count = spec["backend"], spec["count"]
    if ":" in backend:
        os.environ[FAST_VARIANT_ENV] = backend.split(":", 1)[1]
    cap = None
    if preset.device == "cuda" and count > 1:
        cap = 0.95 / count
        torch.cuda.set_per_process_memory_fraction(cap)
    if preset.device == "cpu":
        torch.set_num_threads(1)  # the tiny model gains nothing from threads, and spinning threads stall a busy CPU
    config = trial_config(preset, backend, spec["completion"], spec["steps"] + 1)
    task = get_task(config.data)
    loaded = load_bench_model(preset, seed=spec["index"])
    barrier = Path(spec["barrier"]) if spec.get("barrier") else None
    with tempfile.TemporaryDirectory() as folder, prebuilt(loaded):
        session = build_session(config, RewardSpec((), base_rewards=True), task, task.load_splits(), Path(folder))
        timer = GenerationTimer(session.trainer)
        clock = _clock_callback(barrier, spec["index"], count)
        session.trainer.add_callback(clock)
        try:
            session.trainer.train()
        finally:
            session.close()
    return _trial_figures(preset, timer, clock, cap)


def _trial_figures(preset: Preset, timer: Any, clock: Any, cap: float | None) -> dict[str, Any]:
    import torch

    steps, generation, tokens = clock.steps[1:], timer.seconds[1:], timer.tokens[1:]
    step_s = sum(steps) / len(steps)
    generation_s = sum(generation) / len(generation)
    update_s = step_s - generation_s
    per_step_tokens = sum(tokens) / len(tokens)
    if preset.device == "cuda":
        peak_gb = torch.cuda.max_memory_allocated() / 2**30
        total_gb = torch.cuda.get_device_properties(0).total_memory / 2**30
    else:
        peak_gb, total_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, None
    return {
        "timed_steps": len(steps),
        "first_step_seconds": round(clock.steps[0], 3),
        "seconds_per_step": round(step_s, 3),
        "generation_seconds_per_step": round(generation_s, 3),
        "update_seconds_per_step": round(update_s, 3),
        "completion_tokens_per_step": round(per_step_tokens, 1),
        "generation_tokens_per_second": round(per_step_tokens / generation_s, 2),
        "update_seconds_per_1k_tokens": round(1000 * update_s / max(per_step_tokens, 1), 4),
        "peak_memory_gb": round(peak_gb, 3),
        "memory_cap_gb": round(cap * total_gb, 3) if cap and total_gb else None,
        "window": [clock.window[0], clock.window[-1]],
    }


def spawn_trials(preset: Preset, backend: str, count: int, steps: int, completion: int) -> list[dict[str, Any]]:
    """`count` trials as separate processes on the one device, started together after their warm-up."""
    with tempfile.TemporaryDirectory() as folder:
        procs = []
        for index in range(count):
            spec = {
                "preset": asdict(preset),
                "backend": backend,
                "count": count,
                "index": index,
                "steps": steps,
                "completion": completion,
                "barrier": folder if count > 1 else None,
                "result": str(Path(folder) / f"result-{index}.json"),
            }
            command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
            procs.append((subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), spec))
        results = []
        for proc, spec in procs:
            output, _ = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"trial {backend} x{count} failed (exit {proc.returncode}):\n{output[-3000:]}")
            results.append(json.loads(Path(spec["result"]).read_text()))
    return results


# --------------------------------------------------------------------------------------------------- stages


def stage_backends(preset: Preset, report: dict[str, Any], save: Any, deadline: float) -> None:
    report["backends"] = {}
    for backend in preset.backends:
        if time.time() > deadline:
            report["backends"][backend] = {"skipped": "time budget"}
            continue
        try:
            (figures,) = spawn_trials(preset, backend, 1, preset.steps, preset.completion)
        except RuntimeError as exc:  # a backend that cannot run here is recorded, not fatal
            report["backends"][backend] = {"error": str(exc).splitlines()[0], "log_tail": str(exc)[-1500:]}
        else:
            report["backends"][backend] = figures
            print(f"{backend}: {json.dumps(figures)}", flush=True)
        save()
    _fast_ratio(report)


def _fast_ratio(report: dict[str, Any]) -> None:
    arms = report.get("backends", {})
    if all(arms.get(b, {}).get("generation_tokens_per_second") for b in ("hf", "fast")):
        ratio = arms["fast"]["generation_tokens_per_second"] / arms["hf"]["generation_tokens_per_second"]
        report["fast_over_hf_tokens_per_second"] = round(ratio, 2)


def stage_packing(preset: Preset, report: dict[str, Any], save: Any, deadline: float) -> None:
    packing: dict[str, Any] = {"backend": "hf", "completion_tokens": preset.packing_completion, "runs": {}}
    report["packing"] = packing
    alone = report.get("backends", {}).get("hf", {})
    same = (preset.packing_steps, preset.packing_completion) == (preset.steps, preset.completion)
    for count in preset.packing:
        if time.time() > deadline:
            packing["runs"][str(count)] = {"skipped": "time budget"}
            continue
        if count == 1 and same and "window" in alone:
            trials = [alone]  # the hf backend trial ran exactly this: one trial alone on the device
        else:
            trials = spawn_trials(preset, "hf", count, preset.packing_steps, preset.packing_completion)
        start = min(t["window"][0] for t in trials)
        end = max(t["window"][1] for t in trials)
        steps = sum(t["timed_steps"] for t in trials)
        packing["runs"][str(count)] = {
            "aggregate_steps_per_second": round(steps / max(end - start, 1e-9), 4),
            "seconds_per_step_each": [t["seconds_per_step"] for t in trials],
            "peak_memory_gb_each": [t["peak_memory_gb"] for t in trials],
            "memory_cap_gb": trials[0]["memory_cap_gb"],
            "cap_held": all(t["memory_cap_gb"] is None or t["peak_memory_gb"] <= t["memory_cap_gb"] for t in trials),
        }
        _packing_speedup(packing)
        print(f"packing x{count}: {json.dumps(packing['runs'][str(count)])}", flush=True)
        save()


def _packing_speedup(packing: dict[str, Any]) -> None:
    one = packing["runs"].get("1", {}).get("aggregate_steps_per_second")
    if one:
        packing["speedup"] = {
            k: round(v["aggregate_steps_per_second"] / one, 2)
            for k, v in packing["runs"].items()
            if "aggregate_steps_per_second" in v
        }


def stage_memory_cap(preset: Preset, report: dict[str, Any], fraction: float = 0.25) -> None:
    """Allocate 256 MiB blocks under a 25% cap until refused: the cap holds if the total never exceeded it."""
    import torch

    if preset.device != "cuda":
        report["memory_cap"] = {"skipped": "CPU: torch.cuda.set_per_process_memory_fraction needs a GPU"}
        return
    gc.collect()  # the evaluation stage's models go first: the cap counts everything this process holds
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    held = torch.cuda.memory_allocated()
    torch.cuda.set_per_process_memory_fraction(fraction)
    blocks, refused = [], False
    try:
        while len(blocks) * 2**28 < 2 * total:
            blocks.append(torch.empty(2**28, dtype=torch.uint8, device="cuda"))
    except torch.OutOfMemoryError:
        refused = True
    reached = torch.cuda.memory_allocated()
    blocks.clear()
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(1.0)
    report["memory_cap"] = {
        "fraction": fraction,
        "cap_gb": round(fraction * total / 2**30, 3),
        "allocated_before_gb": round(held / 2**30, 3),
        "allocated_when_refused_gb": round(reached / 2**30, 3),
        "refused": refused,
        "holds": refused and reached <= fraction * total,
    }


def _eval_arm(policy: Any, prompts: list[str], batch: int, tokens: int) -> dict[str, Any]:
    figures: dict[str, Any] = {"questions": len(prompts), "batch_size": batch, "shared_prefix": True}
    try:
        generations, seconds = _timed_generation(policy, prompts, batch, tokens, share_prefix=True)
    except Exception as exc:  # the shared-prefix cache is CPU-tested only: keep the figure, record why it fell back
        figures["shared_prefix"] = False
        figures["shared_prefix_error"] = f"{type(exc).__name__}: {str(exc)[-500:]}"
        generations, seconds = _timed_generation(policy, prompts, batch, tokens, share_prefix=False)
    produced = sum(g.tokens for g in generations)
    rate = round(produced / seconds, 2)
    return {**figures, "tokens": produced, "seconds": round(seconds, 3), "tokens_per_second": rate}


def _timed_generation(policy: Any, prompts: list[str], batch: int, tokens: int, share_prefix: bool) -> Any:
    from reward_search.training.evaluation import generate_batched
    from reward_search.training.generation import _synchronize

    generate_batched(policy, prompts[:1], 2, 1, share_prefix=share_prefix)  # warm-up: kernels, allocator
    _synchronize()
    started = time.perf_counter()
    generations = generate_batched(policy, prompts, tokens, batch, share_prefix=share_prefix)
    _synchronize()
    return generations, time.perf_counter() - started


def stage_evaluation(preset: Preset, report: dict[str, Any], save: Any, deadline: float) -> None:
    """Greedy evaluation tokens/s at each batch size, the LoRA unmerged (as TRL leaves it) and merged into a copy."""
    from peft import LoraConfig, get_peft_model

    from reward_search.task import get_task, render_prompt
    from reward_search.training.evaluation import merged_for_eval
    from reward_search.training.models import LoadedModel

    base = load_bench_model(preset)
    lora = LoraConfig(r=preset.lora_r, lora_alpha=preset.lora_r, target_modules=TARGET_MODULES, init_lora_weights=False)
    model = get_peft_model(base.model, lora)
    model.eval()
    adapted = LoadedModel(model, base.tokenizer, base.spec, base.source, base.device)
    task = get_task()
    questions = task.load_splits().test
    evaluation: dict[str, Any] = {"max_new_tokens": preset.eval_tokens, "unmerged": {}, "merged": {}}
    report["evaluation"] = evaluation
    for batch, count in zip(preset.eval_batches, preset.eval_questions, strict=True):
        prompts = [
            render_prompt(base.tokenizer, task.messages(questions[i % len(questions)].question)) for i in range(count)
        ]
        for arm in ("unmerged", "merged"):
            if time.time() > deadline:
                evaluation[arm][str(batch)] = {"skipped": "time budget"}
                continue
            if arm == "merged":
                with merged_for_eval(adapted) as policy:
                    evaluation[arm][str(batch)] = _eval_arm(policy, prompts, batch, preset.eval_tokens)
            else:
                evaluation[arm][str(batch)] = _eval_arm(adapted, prompts, batch, preset.eval_tokens)
            print(f"evaluation {arm} batch {batch}: {json.dumps(evaluation[arm][str(batch)])}", flush=True)
            save()
    for batch in evaluation["merged"]:
        merged, unmerged = evaluation["merged"][batch], evaluation["unmerged"].get(batch, {})
        if merged.get("tokens_per_second") and unmerged.get("tokens_per_second"):
            evaluation.setdefault("merged_speedup", {})[batch] = round(
                merged["tokens_per_second"] / unmerged["tokens_per_second"], 2
            )


# --------------------------------------------------------------------------------------------------- the report


def header(preset: Preset, smoke: bool) -> dict[str, Any]:
    import torch
    import transformers
    import trl

    gpu = torch.cuda.get_device_name(0) if preset.device == "cuda" else "none (CPU smoke run)"
    return {
        "benchmark": "gpu_screening",
        "smoke": smoke,
        "device": preset.device,
        "gpu": gpu,
        "model": preset.model,
        "batch": "1 prompt x 4 completions (experiments/paper.yaml)",
        "max_completion_length": preset.completion,
        "lora": {"r": preset.lora_r, "target_modules": TARGET_MODULES},
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "trl": trl.__version__,
            "python": platform.python_version(),
        },
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 2),
        "targets": {"fast_over_hf_tokens_per_second": ">= 3", "packing_speedup_4": ">= 2.5"},
    }


def _guarded(report: dict[str, Any], stage: str, run: Any) -> None:
    """A stage that fails on this machine is recorded with its error; the stages after it still run."""
    try:
        run()
    except Exception as exc:  # recorded in the report, which is the point of a device check
        entry = report.get(stage) if isinstance(report.get(stage), dict) else {}
        report[stage] = {**entry, "error": f"{type(exc).__name__}: {str(exc)[-1500:]}"}
        print(f"{stage} failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)


def run_all(
    preset: Preset, out: Path, smoke: bool, stages: Sequence[str] = STAGES, base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run `stages`, saving after each; with `base` (an earlier report), the saved and returned report keep its
    other stages."""
    from reward_search import io

    started = time.time()
    deadline = started + preset.budget_s
    report = header(preset, smoke)
    stages = list(stages)
    if base:
        merged_report(base, report, stages)  # another GPU or model is refused before any stage spends device time

    def final() -> dict[str, Any]:
        return merged_report(base, report, stages) if base else report

    def save() -> None:
        report["seconds"] = round(time.time() - started, 1)
        io.write_json(out, final())

    if "backends" in stages:
        stage_backends(replace(preset, backends=preset.backends[:2]), report, save, deadline)
    runs = {
        "memory_cap": lambda: stage_memory_cap(preset, report),
        "evaluation": lambda: stage_evaluation(preset, report, save, deadline),
        "packing": lambda: stage_packing(preset, report, save, deadline),
    }
    for stage in (s for s in stages if s in runs):
        _guarded(report, stage, runs[stage])
        save()
    _drop_windows(report)
    extra = preset.backends[2:]
    if extra and "backends" in stages:
        first = dict(report["backends"])
        stage_backends(replace(preset, backends=extra), report, save, deadline)
        report["backends"] = {**first, **report["backends"]}
        _drop_windows(report)
    save()
    return final()


def _drop_windows(report: dict[str, Any]) -> None:
    for figures in report.get("backends", {}).values():
        figures.pop("window", None)


def merged_report(base: dict[str, Any], new: dict[str, Any], stages: list[str]) -> dict[str, Any]:
    """`new`'s stages over an earlier report's (same GPU and model): a check split over two device sessions."""
    if (base.get("gpu"), base.get("model")) != (new.get("gpu"), new.get("model")):
        raise ValueError(f"--merge: {base.get('gpu')}/{base.get('model')} is not {new.get('gpu')}/{new.get('model')}")
    kept = [s for s in STAGES if s not in stages and s in base]
    report = {**new, **{s: base[s] for s in kept}}
    if "packing" in stages and "runs" in base.get("packing", {}) and "runs" in new.get("packing", {}):
        runs = {**base["packing"]["runs"], **new["packing"]["runs"]}  # counts measured apart, the newest kept
        report["packing"] = {**new["packing"], "runs": dict(sorted(runs.items(), key=lambda kv: int(kv[0])))}
        _packing_speedup(report["packing"])
    _fast_ratio(report)
    earlier = base.get("stages_from", {}) or {s: base.get("measured", "an earlier run") for s in kept}
    sources = {s: earlier.get(s, "an earlier run") for s in kept}
    report["stages_from"] = {**sources, **{s: new["measured"] for s in stages}}
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny model, the same code (under 2 minutes)")
    parser.add_argument("--out", help="JSON file (default benchmarks/results/gpu_screening[_smoke].json)")
    parser.add_argument("--budget-s", type=float, help="stop starting new measurements after this many seconds")
    parser.add_argument(
        "--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)} (default: all)"
    )
    parser.add_argument("--merge", help="an earlier report (same GPU and model) whose other stages the output keeps")
    parser.add_argument("--packing", help="comma-separated trial counts for the packing stage (default 1,2,4)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown or not stages:
        parser.error(f"--stages: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(STAGES)}")
    base = None
    if args.merge:
        try:
            base = json.loads(Path(args.merge).read_text())
        except (OSError, ValueError) as exc:
            parser.error(f"--merge {args.merge}: {exc}")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import warnings

    warnings.filterwarnings("ignore")
    if args.worker:
        spec = json.loads(args.worker)
        Path(spec["result"]).write_text(json.dumps(run_trial(spec)))
        return 0
    preset = SMOKE if args.smoke else GPU
    if args.budget_s:
        preset = replace(preset, budget_s=args.budget_s)
    if args.packing:
        try:
            preset = replace(preset, packing=tuple(int(c) for c in args.packing.split(",")))
        except ValueError:
            parser.error(f"--packing {args.packing}: give trial counts such as 1,2,4")
    import torch

    if preset.device == "cpu":
        torch.set_num_threads(1)
    if preset.device == "cuda" and not torch.cuda.is_available():
        print("gpu_screening: no GPU visible to torch; run with --smoke on a CPU machine", file=sys.stderr)
        return 2
    name = "gpu_screening_smoke.json" if args.smoke else "gpu_screening.json"
    out = Path(args.out) if args.out else RESULTS / name
    try:
        report = run_all(preset, out, args.smoke, stages, base)
    except ValueError as exc:
        print(f"gpu_screening: {exc}", file=sys.stderr)
        return 2
    summary = {k: report.get(k) for k in ("gpu", "fast_over_hf_tokens_per_second", "seconds")}
    summary["packing_speedup"] = report.get("packing", {}).get("speedup")
    summary["memory_cap_holds"] = report.get("memory_cap", {}).get("holds")
    print(json.dumps(summary))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
