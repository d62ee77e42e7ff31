"""Evaluation throughput: one question at a time (as the paper's reference code did) versus batched.

Both arms run in this process on the same model, questions and token budget, so the ratio is a fair comparison on
this machine. Prints tokens/s, questions/s, peak RSS and the speed-up; writes JSON under benchmarks/results/.
`--adapter-arm` adds a LoRA (r=16 on the 7 projections, random non-zero weights) evaluated batched as TRL leaves it
(unmerged) and as `evaluate` runs it (merged into a copy), with the count of identical greedy completions.
`--prefix-arm` times the demo's selection evaluation (50 dev questions, 32 tokens, batch 25; generation and the
gold log-prob pass) with every prompt computed in full, with the prompts' shared opening computed once, and with
that plus the gold pass started from each generation batch's cache.

    .venv/bin/python benchmarks/eval_throughput.py [--questions 32] [--max-new-tokens 256] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

from reward_search.config import EvalConfig
from reward_search.task import get_task
from reward_search.training.evaluation import evaluate
from reward_search.training.models import load_model

RESULTS = Path(__file__).resolve().parent / "results"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_arm(loaded, task, problems, batch_size: int, max_new_tokens: int) -> dict:
    config = EvalConfig(split="test", batch_size=batch_size, max_new_tokens=max_new_tokens)
    started = time.perf_counter()
    result = evaluate(loaded, task, problems, config, show_progress=sys.stderr.isatty())
    seconds = time.perf_counter() - started
    return {
        "batch_size": batch_size,
        "seconds": round(seconds, 2),
        "tokens": result.tokens_generated,
        "tokens_per_second": round(result.tokens_generated / seconds, 2),
        "questions_per_second": round(len(problems) / seconds, 4),
        "accuracy": result.metrics.accuracy,
        "peak_rss_mb_after": round(peak_rss_mb(), 1),
        "completions": [r["completion"] for r in result.records],
    }


def adapter_arm(loaded, task, problems, batch_size: int, max_new_tokens: int) -> dict:
    """Batched evaluation of a LoRA model, unmerged (PEFT's extra matmuls per token) versus merged into a copy."""
    import torch
    from peft import LoraConfig, get_peft_model

    from reward_search.training.evaluation import _evaluate
    from reward_search.training.models import LoadedModel

    modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = get_peft_model(
        loaded.model, LoraConfig(r=16, lora_alpha=32, target_modules=modules, init_lora_weights=False)
    )
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.mul_(0.01)  # an adapter that changes the model a little, as a trained one does
    adapted = LoadedModel(model, loaded.tokenizer, loaded.spec, loaded.source, loaded.device)
    config = EvalConfig(split="test", batch_size=batch_size, max_new_tokens=max_new_tokens)
    arms = {}
    for name in ("unmerged", "merged"):
        started = time.perf_counter()
        if name == "merged":
            result = evaluate(adapted, task, problems, config, show_progress=False)
        else:
            result = _evaluate(adapted, task, problems, config, False, False)
        seconds = time.perf_counter() - started
        arms[name] = {
            "seconds": round(seconds, 2),
            "tokens_per_second": round(result.tokens_generated / seconds, 2),
            "completions": [r["completion"] for r in result.records],
        }
    merged, unmerged = arms["merged"].pop("completions"), arms["unmerged"].pop("completions")
    same = sum(a == b for a, b in zip(merged, unmerged, strict=True))
    model.unload()  # the base model back as it was for any later arm
    return {
        **arms,
        "merged_speedup": round(arms["unmerged"]["seconds"] / arms["merged"]["seconds"], 2),
        "identical_completions": same,
        "note": "seconds include the gold log-prob pass each evaluate() makes",
    }


def prefix_arm(loaded, task, problems, batch_size: int, max_new_tokens: int) -> dict:
    """The selection evaluation's two passes (greedy generation, gold log-probabilities) three ways: every prompt
    computed in full by both (as before), the prompts' shared opening computed once, and that plus the gold pass
    started from each generation batch's own cache (what `evaluate` does now)."""
    from reward_search.task import render_prompt
    from reward_search.training.evaluation import generate_batched
    from reward_search.training.gold_logprob import gold_logprobs, target_ids

    prompts = [render_prompt(loaded.tokenizer, task.messages(p.question)) for p in problems]
    targets = target_ids(loaded.tokenizer, problems)
    rows = min(batch_size, 8)
    arms: dict = {}
    for name in ("full_prompts", "shared_prefix", "shared_prefix_and_generation_cache"):
        started = time.perf_counter()
        if name == "shared_prefix_and_generation_cache":
            generations = generate_batched(
                loaded, prompts, max_new_tokens, batch_size, targets=targets, target_rows=rows
            )
            values = [g.gold_logprob for g in generations]
        else:
            share = name == "shared_prefix"
            generations = generate_batched(loaded, prompts, max_new_tokens, batch_size, share_prefix=share)
            values = gold_logprobs(loaded, task, problems, rows, share_prefix=share)
        arms[name] = {
            "seconds": round(time.perf_counter() - started, 2),
            "texts": [g.text for g in generations],
            "values": values,
        }
    full = arms["full_prompts"]
    texts, values = full.pop("texts"), full.pop("values")
    for name in ("shared_prefix", "shared_prefix_and_generation_cache"):
        arm = arms[name]
        arm["speedup"] = round(full["seconds"] / arm["seconds"], 2)
        arm["identical_completions"] = sum(a == b for a, b in zip(texts, arm.pop("texts"), strict=True))
        arm["max_gold_logprob_difference"] = max(abs(a - b) for a, b in zip(values, arm.pop("values"), strict=True))
    return {**arms, "prefix_tokens": _prefix_tokens(loaded, prompts)}


def prefix_report(loaded, task, args) -> dict:
    import torch

    dev = task.load_splits().dev[: args.prefix_questions]
    return {
        "questions": len(dev),
        "split": "dev",
        "max_new_tokens": args.prefix_new_tokens,
        "batch_size": args.prefix_batch_size,
        "torch_threads": torch.get_num_threads(),
        **prefix_arm(loaded, task, dev, args.prefix_batch_size, args.prefix_new_tokens),
    }


def _prefix_tokens(loaded, prompts) -> int:
    from reward_search.training.prefix_cache import common_prefix_length

    return common_prefix_length([loaded.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--questions", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--adapter-arm", action="store_true", help="also LoRA unmerged vs merged (batched)")
    parser.add_argument(
        "--prefix-arm",
        action="store_true",
        help="also the shared prompt prefix on vs off, on the demo's selection evaluation (--prefix-questions dev "
        "questions, --prefix-new-tokens tokens, batch --prefix-batch-size)",
    )
    parser.add_argument("--only-prefix", action="store_true", help="rerun only the prefix arm (keeps the rest)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--prefix-questions", type=int, default=50)
    parser.add_argument("--prefix-new-tokens", type=int, default=32)
    parser.add_argument("--prefix-batch-size", type=int, default=25)
    parser.add_argument("--out", default=str(RESULTS / "eval_throughput.json"))
    args = parser.parse_args()

    if args.threads:
        __import__("torch").set_num_threads(args.threads)  # 1: as a demo trial runs, one core each
    loaded = load_model(args.model, device="cpu")
    task = get_task()
    problems = task.load_splits().test[: args.questions]
    print(f"model {loaded.source}; {len(problems)} test questions; {args.max_new_tokens} new tokens; greedy")

    if args.only_prefix:  # rerun only that arm, keeping the rest of the results file
        report = (
            json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {"benchmark": "eval_throughput"}
        )
        report["shared_prefix"] = prefix_report(loaded, task, args)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps(report["shared_prefix"], indent=2))
        return 0
    batched = run_arm(loaded, task, problems, args.batch_size, args.max_new_tokens)
    print(f"batched ({args.batch_size}): {batched['seconds']}s, {batched['tokens_per_second']} tokens/s")
    single = run_arm(loaded, task, problems, 1, args.max_new_tokens)
    print(f"one at a time:  {single['seconds']}s, {single['tokens_per_second']} tokens/s")

    same = sum(a == b for a, b in zip(single.pop("completions"), batched.pop("completions"), strict=True))
    adapter = adapter_arm(loaded, task, problems, args.batch_size, args.max_new_tokens) if args.adapter_arm else None
    prefix = prefix_report(loaded, task, args) if args.prefix_arm else None
    speedup = single["seconds"] / batched["seconds"]
    report = {
        "benchmark": "eval_throughput",
        "model": args.model,
        "questions": len(problems),
        "max_new_tokens": args.max_new_tokens,
        "one_at_a_time": single,
        "batched": batched,
        "speedup": round(speedup, 2),
        "identical_completions": same,
        "lora_adapter": adapter,
        "shared_prefix": prefix,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": __import__("torch").get_num_threads(),
            "load_average": os.getloadavg()[0],
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "target": "batched at least 5x faster on 2 CPU cores",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "machine"}, indent=2))
    print(f"speed-up {speedup:.2f}x (target >= 5x); {same}/{len(problems)} completions identical; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
