"""Sandbox overhead: a GRPO-sized batch scored by the three base rewards plus one candidate reward.

Compares the candidate run in-process (what the reference code did) with the candidate run through its sandbox
worker, for 16 and 64 completions of about 300 tokens, and measures worker start time (spawn, harden, load). Both
with every layer on (seccomp-bpf, PID/mount/IPC/network namespaces, own uid, audit hook) and with only the
Python-level layers and rlimits (the sandbox before the OS layers), in the same run, so the OS layers' own cost
per batch and per start is the difference. Prints a table and writes ``benchmarks/results/sandbox_overhead.json``.

    .venv/bin/python benchmarks/sandbox_overhead.py [--reps 50]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

from reward_search.candidates.probes import ProbeConfig, _sample_items, build_probes
from reward_search.candidates.sandbox import CandidateRunner
from reward_search.candidates.settings import SandboxConfig
from reward_search.task.base_rewards import BASE_REWARDS

CANDIDATE = """
import re
from functools import lru_cache

NUMBER = re.compile(r"-?\\d[\\d,]*(?:\\.\\d+)?")
SOLUTION = re.compile(r"<solution>(.*?)</solution>", re.S)


@lru_cache(maxsize=4096)
def _last_number(text):
    found = NUMBER.findall(text)
    return float(found[-1].replace(",", "")) if found else None


def closeness_reward(prompts, completions, answer, **kwargs):
    scores = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[0]["content"]
        block = SOLUTION.findall(text)
        guess = _last_number(block[-1] if block else text)
        if guess is None:
            scores.append(-0.5)
            continue
        target = float(gold.replace(",", ""))
        scores.append(max(0.0, 1.0 - abs(guess - target) / max(1.0, abs(target))))
    return scores
"""
OUT = Path(__file__).parent / "results" / "sandbox_overhead.json"


def make_batch(n: int) -> tuple[list[str], list[str], list[str]]:
    """n completions of about 1,200 characters (about 300 tokens) built from GSM8K sample items."""
    items = _sample_items(16)
    prompts, completions, answers = [], [], []
    for i in range(n):
        item = items[i % len(items)]
        probes = build_probes(item, ProbeConfig())
        label = ("correct_formatted", "wrong_formatted", "correct_unformatted", "truncated")[i % 4]
        text = probes[label].text
        reasoning = "\n".join(item.steps)
        while len(text) < 1200:
            text = f"Let me re-check. {reasoning}\n" + text
        prompts.append(item.question)
        completions.append(f"{text} [{i}]")  # distinct texts, so the candidate's cache does not hide the work
        answers.append(item.answer)
    return prompts, completions, answers


def time_ms(fn, reps: int) -> float:
    for _ in range(3):
        fn()  # warm-up
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def measure(runner: CandidateRunner, in_process_candidate, n: int, reps: int) -> dict:
    """Median ms per batch of n: base rewards + the candidate in-process, and base rewards + the sandboxed one."""
    prompts, completions, answers = make_batch(n)

    def base() -> None:
        for reward in BASE_REWARDS.values():
            reward(prompts, completions, answer=answers)

    def in_process() -> None:
        base()
        in_process_candidate(prompts, completions, answers)

    def sandboxed() -> None:
        base()
        result = runner.call(CANDIDATE, "closeness_reward", prompts, completions, answer=answers)
        assert result.ok, result.error

    inproc_ms, sandbox_ms = time_ms(in_process, reps), time_ms(sandboxed, reps)
    return {
        "completions": n,
        "mean_chars": round(statistics.fmean(len(c) for c in completions)),
        "in_process_ms": round(inproc_ms, 3),
        "sandbox_ms": round(sandbox_ms, 3),
        "added_ms": round(sandbox_ms - inproc_ms, 3),
        "ratio": round(sandbox_ms / inproc_ms, 3),
    }


CONFIGS = {
    "all_layers": SandboxConfig(),
    "python_layers_only": SandboxConfig(seccomp=False, namespaces=False, distinct_uids=False),
}


def start_times(config: SandboxConfig, count: int = 10) -> dict:
    starts = []
    for _ in range(count):
        with CandidateRunner(config) as fresh:
            begin = time.perf_counter()
            assert fresh.load(CANDIDATE, "closeness_reward").ok
            starts.append((time.perf_counter() - begin) * 1000)
    return {"median": round(statistics.median(starts), 2), "max": round(max(starts), 2)}


def measure_config(config: SandboxConfig, in_process_candidate, reps: int) -> dict:
    with CandidateRunner(config) as runner:
        assert runner.load(CANDIDATE, "closeness_reward").ok
        layers = runner.facts(CANDIDATE, "closeness_reward")
        batches = {str(n): measure(runner, in_process_candidate, n, reps) for n in (16, 64)}
    return {"layers": layers, "batches": batches, "worker_start_ms": start_times(config)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=50)
    args = parser.parse_args()

    namespace: dict = {"__name__": "benchmark_candidate"}
    exec(compile(CANDIDATE, "<candidate>", "exec"), namespace)  # our own trusted benchmark code
    in_process_candidate = namespace["closeness_reward"]

    results: dict = {"python": platform.python_version(), "machine": platform.machine(), "configs": {}}
    for name, config in CONFIGS.items():
        results["configs"][name] = measure_config(config, in_process_candidate, args.reps)
    full, bare = results["configs"]["all_layers"], results["configs"]["python_layers_only"]
    results["batches"], results["worker_start_ms"] = full["batches"], full["worker_start_ms"]  # the shipped default
    results["os_layers_cost"] = {
        "batch_64_ms": round(full["batches"]["64"]["sandbox_ms"] - bare["batches"]["64"]["sandbox_ms"], 3),
        "worker_start_ms": round(full["worker_start_ms"]["median"] - bare["worker_start_ms"]["median"], 2),
    }
    results["targets"] = {"added_ms_batch_64": 20.0, "worker_start_ms": 200.0}
    results["meets_targets"] = (
        results["batches"]["64"]["added_ms"] <= 20.0 and results["worker_start_ms"]["median"] < 200.0
    )

    print(f"{'config':>19} {'batch':>6} {'in-process ms':>14} {'sandbox ms':>11} {'added ms':>9} {'ratio':>6}")
    for name, block in results["configs"].items():
        for n, row in block["batches"].items():
            cells = f"{row['in_process_ms']:>14.2f} {row['sandbox_ms']:>11.2f} {row['added_ms']:>9.2f}"
            print(f"{name:>19} {n:>6} {cells} {row['ratio']:>6.2f}")
        start = block["worker_start_ms"]
        print(f"{name:>19} worker start (spawn, harden, load): median {start['median']:.1f}, max {start['max']:.1f} ms")
    cost = results["os_layers_cost"]
    print(
        f"OS layers' own cost: {cost['batch_64_ms']:+.2f} ms per batch of 64, {cost['worker_start_ms']:+.1f} ms/start"
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
