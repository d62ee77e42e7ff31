"""Scale simulation: barrier, async and steady proposing on many logical GPUs, with sleep-trials of identical durations.

Two engines, both around the project's real `RewardSearcher` and leaderboard actor:

- `tune`: the real driver (`run_search`: proposer, sandbox validation, leaderboard actor, Tune) on a local Ray with
  logical GPUs; each trial sleeps. One Ray worker process per running trial, so the slot count is bounded by this
  machine's memory and cores (a 2-core box holds a few dozen).
- `replay`: the real searcher and the real leaderboard actor driven by a discrete-event clock instead of Tune, so
  64 and 256 GPUs with 512 trials of minutes each take seconds. Proposing costs a modelled time (a batch's LLM call
  plus validation per candidate); Tune's own overhead is not in it (the `tune` engine measures that).

Durations are a log-normal list indexed by the trial's hand-out position (round by round, index within the round:
position k), identical for every arm. Figures per arm:
- scheduling efficiency: the makespan of a zero-overhead greedy schedule of the same durations in the same order,
  over the measured makespan (1.0: the search lost nothing to rounds, proposing or Tune);
- bound efficiency: max(total / slots, longest) over the makespan; GPU-idle fraction: 1 - busy / (slots x makespan);
- conditioning: per trial, how many finished results its proposal's feedback included (mean), and the same as a
  fraction of the results finished when the trial started (freshness: 1.0 means nothing newer existed);
- leaderboard update latency p50/p99 (measured inside the actor) and the driver's CPU seconds and peak memory.

    .venv/bin/python benchmarks/scale_sim.py [--quick]
Writes benchmarks/results/scale_sim.json. Real Tune at 64 logical GPUs (a Tune trial's worker holds 128 MB of its
own, about 150 MB of the machine's memory; 256 would need 33-38 GB, more than a 24 GB box holds), with trials long
enough that starting 64 worker processes on 2 cores is not most of the run (about 80 minutes for the three arms):

    .venv/bin/python benchmarks/scale_sim.py --engines tune --tune-slots 64 --tune-trials 128 --tune-median 240 \
        --tune-modes barrier,async,steady --out benchmarks/results/scale_sim_tune64.json

A busy scheduler's trial k (from 0) can have seen at most k - slots + 1 results; barrier shows more by idling slots,
and the gap closes only as trials per slot grow (about (n - 1) / n of barrier's mean at n trials per slot). Replay
with many trials per slot shows where the count comes within 10% of barrier's:

    .venv/bin/python benchmarks/scale_sim.py --engines replay --trials 4096 \
        --out benchmarks/results/scale_sim_replay4096.json
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
SMOKE = REPO / "experiments" / "smoke.yaml"
ARMS = ("barrier", "async", "steady")


def durations(count: int, median: float, sigma: float = 0.6, cap: float = 4.0, seed: int = 15) -> list[float]:
    """Log-normal durations (median `median`, capped at `cap` x median), the same list for every arm."""
    rng = random.Random(seed)
    return [min(cap * median, median * math.exp(sigma * rng.gauss(0.0, 1.0))) for _ in range(count)]


def greedy_makespan(times: list[float], slots: int) -> float:
    """Makespan of handing out `times` in order to the first free of `slots` slots, with zero overhead."""
    free = [0.0] * slots
    for seconds in times:
        heapq.heappush(free, heapq.heappop(free) + seconds)
    return max(free)


def figures(spans: list[dict[str, Any]], slots: int) -> dict[str, float]:
    """Efficiency, idle fraction and conditioning from trial spans {k, start, end, seen, finished_before}."""
    spans = sorted(spans, key=lambda s: s["k"])
    times = [s["end"] - s["start"] for s in spans]
    makespan = max(s["end"] for s in spans) - min(s["start"] for s in spans)
    busy = sum(times)
    ideal = greedy_makespan(times, slots)
    seen = [s["seen"] for s in spans]
    fresh = [s["seen"] / s["finished_before"] if s["finished_before"] else 1.0 for s in spans]
    return {
        "trials": len(spans),
        "makespan": round(makespan, 2),
        "scheduling_efficiency": round(ideal / makespan, 3),
        "bound_efficiency": round(max(busy / slots, max(times)) / makespan, 3),
        "gpu_idle_fraction": round(1 - busy / (slots * makespan), 3),
        "conditioning_mean_seen": round(sum(seen) / len(seen), 1),
        "conditioning_freshness": round(sum(fresh) / len(fresh), 3),
    }


def _arm_config(folder: Path, name: str, mode: str, slots: int, rounds: int, staleness: int, extra: list[str]):
    from reward_search.config import load_config

    return load_config(
        SMOKE,
        [
            f"run.storage_path={folder}",
            f"run.name={name}",
            f"search.mode={mode}",
            f"search.rounds={rounds}",
            f"search.candidates_per_round={slots}",
            f"search.max_staleness={staleness}",
            f"search.max_concurrent_trials={slots}",
            "search.gpus_per_trial=1",
            "search.cpus_per_trial=0",
            "search.max_proposal_attempts=8",
            "search.dashboard=false",
            "finalize.enabled=false",
            *extra,
        ],
    )


def _driver_usage(before: tuple[float, int]) -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "driver_cpu_seconds": round(usage.ru_utime + usage.ru_stime - before[0], 2),
        "driver_peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def _usage_now() -> tuple[float, int]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime, usage.ru_maxrss)


# --------------------------------------------------------------------------------------------- replay engine


class ReplayClock:
    """A discrete-event stand-in for Tune: trials start when a slot is free and the searcher suggests one."""

    def __init__(self, searcher: Any, board: Any, times: list[float], slots: int, latency: tuple[float, float]):
        self.searcher, self.board, self.times, self.slots = searcher, board, times, slots
        self.latency = latency  # (seconds per batch, seconds per candidate) of proposing
        self.now = 0.0
        self.running: list[tuple[float, str]] = []  # (end, trial id)
        self.proposal: tuple[float, int, int, int] | None = None  # (done at, round, wanted, results seen)
        self.spans: dict[str, dict[str, Any]] = {}
        self.finished = 0
        self.made = 0

    def start_round(self, round: int, wanted: int) -> None:
        """The searcher's proposing, in virtual time: candidates appear after the modelled latency."""
        done_at = self.now + self.latency[0] + self.latency[1] * wanted
        self.proposal = (done_at, round, wanted, self.finished)

    def _finish_proposal(self) -> None:
        import ray

        from reward_search.candidates.candidate import RewardCandidate

        _, round, wanted, seen = self.proposal
        accepted = []
        for i in range(self.made, self.made + wanted):
            source = f"def sim_{i}(completions, **kwargs):\n    return [{i % 7} * 0.1 for _ in completions]\n"
            cand = RewardCandidate.from_dict({"name": f"sim_{i}", "source": source})
            if ray.get(self.board.add_candidate.remote(cand.to_dict(), round, "accepted", [], seen)):
                accepted.append(cand.id)
        self.made += wanted
        self.proposal = None
        with self.searcher._lock:
            self.searcher.rules.proposed(round, wanted, accepted)
            self.searcher._maybe_propose()

    def _hand_out(self) -> None:
        from ray.tune.search import Searcher

        while len(self.running) < self.slots:
            trial_id = f"t{len(self.spans):05d}"
            params = self.searcher.suggest(trial_id)
            if params is None or params == Searcher.FINISHED:
                return
            k = len(self.spans)
            seconds = self.times[k % len(self.times)]
            self.spans[trial_id] = {
                "k": k,
                "start": self.now,
                "seen": params["seen"],
                "finished_before": self.finished,
            }
            heapq.heappush(self.running, (self.now + seconds, trial_id))

    def run(self) -> list[dict[str, Any]]:
        self.searcher._maybe_propose()
        while True:
            self._hand_out()
            next_end = self.running[0][0] if self.running else math.inf
            next_proposal = self.proposal[0] if self.proposal else math.inf
            if next_end == math.inf and next_proposal == math.inf:
                return list(self.spans.values())
            if next_proposal <= next_end:
                self.now = next_proposal
                self._finish_proposal()
                continue
            self.now, trial_id = heapq.heappop(self.running)
            self.spans[trial_id]["end"] = self.now
            result = {"final": True, "status": "done", "selection_accuracy": 0.5, "selection_correct": 2}
            self.searcher.on_trial_complete(trial_id, {**result, "selection_n": 4, "train_seconds": 1.0})
            self.finished += 1


def _replay_searcher_class() -> type:
    from reward_search.search.searcher import RewardSearcher

    class ReplaySearcher(RewardSearcher):
        """The real searcher, proposing in the replay clock's virtual time instead of a thread."""

        clock: Any = None

        @property
        def proposing(self) -> bool:
            return self.clock is not None and self.clock.proposal is not None

        def _start_round(self, round: int, wanted: int) -> None:
            self.clock.start_round(round, wanted)

    return ReplaySearcher


def replay_arm(mode: str, slots: int, times: list[float], staleness: int, latency: tuple[float, float]) -> dict:
    """One arm on the replay engine: the real searcher and leaderboard actor, virtual trial and proposing time."""
    import ray

    from reward_search.search.leaderboard import leaderboard_actor

    ReplaySearcher = _replay_searcher_class()
    rounds = len(times) // slots
    with tempfile.TemporaryDirectory() as tmp:
        board = leaderboard_actor(tmp, f"replay-{mode}-{slots}-{os.getpid()}")

        def params(entry: Any) -> dict[str, Any]:
            return {"candidate_id": entry.candidate_id, "round": entry.round, "seen": entry.conditioned_on}

        searcher = ReplaySearcher(
            board, lambda r, n: [], params, rounds, slots, mode=mode, slots=slots, max_staleness=staleness
        )
        clock = ReplayClock(searcher, board, times, slots, latency)
        searcher.clock = clock
        before = _usage_now()
        started = time.time()
        spans = clock.run()
        wall = time.time() - started
        latency_stats = ray.get(board.latency.remote())
        ray.kill(board)
    out = {"mode": mode, "engine": "replay", "slots": slots, **figures(spans, slots)}
    out.update(_driver_usage(before))
    out["leaderboard_update_ms"] = {k: round(latency_stats[k] * 1000, 2) for k in ("p50", "p99", "max")}
    out["wall_seconds"] = round(wall, 1)
    return out


# --------------------------------------------------------------------------------------------- tune engine


def sleeping_trainable(params: dict) -> None:
    """Sleeps the duration of its hand-out position (a ticket from the sim's counter actor), then reports."""
    import ray
    from ray import tune

    run = params["config"]["run"]
    folder = Path(run["storage_path"])
    spec = json.loads((folder / "durations.json").read_text())
    counter = ray.get_actor("scale-sim-ticket", namespace="scale-sim")
    k = ray.get(counter.next.remote())
    start = time.time()
    time.sleep(spec[k % len(spec)])
    with (folder / "spans.jsonl").open("a") as handle:
        line = {"k": k, "candidate_id": params["candidate_id"], "start": start, "end": time.time()}
        handle.write(json.dumps(line) + "\n")
    tune.report({"final": True, "status": "done", "selection_accuracy": 0.5, "selection_correct": 2, "selection_n": 4})


class Ticket:
    def __init__(self) -> None:
        self.value = -1

    def next(self) -> int:
        self.value += 1
        return self.value


def tune_arm(folder: Path, mode: str, slots: int, times: list[float], staleness: int) -> dict:
    """One arm through the real driver and Tune (the evolutionary proposer, sandbox validation included)."""
    import ray

    from reward_search.search.driver import run_search
    from reward_search.search.leaderboard import load_entries, namespace_for
    from reward_search.search.runid import ensure_run_id

    arm = folder / f"{mode}-{slots}"
    arm.mkdir(parents=True)
    (arm / "durations.json").write_text(json.dumps(times))
    ticket = ray.remote(num_cpus=0)(Ticket).options(name="scale-sim-ticket", namespace="scale-sim").remote()
    config = _arm_config(arm, "sim", mode, slots, len(times) // slots, staleness, [])
    before = _usage_now()
    outcome = run_search(config, address="auto", trainable=sleeping_trainable, verbose=False)
    usage = _driver_usage(before)
    ray.kill(ticket)
    entries = {e.candidate_id: e for e in load_entries(outcome.run_dir)}
    spans = [json.loads(line) for line in (arm / "spans.jsonl").read_text().splitlines()]
    ends = sorted(s["end"] for s in spans)
    for span in spans:
        span["seen"] = entries[span["candidate_id"]].conditioned_on or 0
        span["finished_before"] = sum(1 for end in ends if end <= span["start"])
    out = {"mode": mode, "engine": "tune", "slots": slots, **figures(spans, slots), **usage}
    board = ray.get_actor("leaderboard", namespace=namespace_for(ensure_run_id(outcome.run_dir, "sim")))
    stats = ray.get(board.latency.remote())
    out["leaderboard_update_ms"] = {k: round(stats[k] * 1000, 2) for k in ("p50", "p99", "max")}
    out["wall_seconds"] = round(outcome.seconds, 1)
    out["stop_reason"] = outcome.stop_reason
    return out


# --------------------------------------------------------------------------------------------- leaderboard


def leaderboard_latency(count: int = 2000, updates: int = 1000) -> dict[str, Any]:
    """Update latency of the leaderboard actor holding `count` candidates: in the actor and as the caller sees it."""
    import ray

    from reward_search.candidates.records import LeaderboardEntry
    from reward_search.search.leaderboard import LeaderboardCore, leaderboard_actor

    with tempfile.TemporaryDirectory() as tmp:
        seed = LeaderboardCore(tmp)
        for i in range(count):
            seed.entries[f"{i:016x}"] = LeaderboardEntry(
                candidate_id=f"{i:016x}", name=f"r{i}", round=1 + i // 64, proposer="sim", status="accepted", source=""
            )
        seed.compact()
        board = leaderboard_actor(tmp, f"latency-{os.getpid()}")
        ray.get(board.latency.remote())  # started and loaded
        seen = []
        for n in range(updates):
            cid = f"{(n * 7919) % count:016x}"
            started = time.perf_counter()
            ray.get(board.update.remote(cid, event_id=f"u{n}", train_seconds=float(n), reasons=["sim"]))
            seen.append(time.perf_counter() - started)
        inside = ray.get(board.latency.remote())
        ray.kill(board)
    seen.sort()
    return {
        "candidates": count,
        "updates": updates,
        "actor_p50_ms": round(inside["p50"] * 1000, 2),
        "actor_p99_ms": round(inside["p99"] * 1000, 2),
        "caller_p50_ms": round(seen[len(seen) // 2] * 1000, 2),
        "caller_p99_ms": round(seen[int(0.99 * len(seen))] * 1000, 2),
        "target": "p99 < 50 ms",
    }


# --------------------------------------------------------------------------------------------- main


def start_ray(**options: Any) -> None:
    """ray.init, retried: Ray 2.60 gives a raylet 30 s to register, which a loaded 2-core box can exceed."""
    import ray

    for attempt in range(3):
        try:
            ray.init(address="local", include_dashboard=False, log_to_driver=False, **options)
            return
        except Exception as exc:  # Ray raises a bare Exception for this timeout
            ray.shutdown()
            if "timed out during startup" not in str(exc) or attempt == 2:
                raise


def _print(row: dict) -> None:
    keys = ("engine", "slots", "mode", "trials", "scheduling_efficiency", "gpu_idle_fraction")
    more = ("conditioning_mean_seen", "conditioning_freshness", "driver_cpu_seconds", "wall_seconds")
    print("  ".join(f"{k}={row.get(k)}" for k in keys + more), flush=True)


def main() -> int:
    import warnings

    import ray

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="under 3 minutes on 2 cores: replay at 64 and 256 GPUs (all modes), real Tune for steady only",
    )
    parser.add_argument("--trials", type=int, default=512, help="replay trials per arm (a multiple of the slots)")
    parser.add_argument("--median", type=float, default=600.0, help="replay median trial seconds (virtual)")
    parser.add_argument("--propose", type=float, nargs=2, default=(20.0, 1.0), metavar=("BATCH_S", "PER_CAND_S"))
    parser.add_argument("--tune-slots", type=int, default=None, help="logical GPUs of the tune engine")
    parser.add_argument("--tune-trials", type=int, default=None, help="trials of each tune arm (default 3-4 per slot)")
    parser.add_argument("--tune-median", type=float, default=None, help="median sleep seconds of a tune trial")
    parser.add_argument("--tune-modes", default=None, help="comma-separated modes of the tune engine (default: all)")
    parser.add_argument("--engines", default="replay,tune", help="comma-separated: replay, tune")
    parser.add_argument("--out", default=str(RESULTS / "scale_sim.json"), help="the JSON to write")
    args = parser.parse_args()
    engines = set(args.engines.split(","))
    warnings.filterwarnings("ignore")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_raylet_start_wait_time_s", "300")  # a loaded machine starts Ray slowly
    tune_slots = args.tune_slots or (8 if args.quick else 16)
    tune_trials = args.tune_trials or tune_slots * (3 if args.quick else 4)
    tune_median = args.tune_median or (3.0 if args.quick else 6.0)
    tune_modes = args.tune_modes.split(",") if args.tune_modes else ("steady",) if args.quick else ARMS
    report: dict[str, Any] = {"benchmark": "scale_sim", "cpus": os.cpu_count(), "quick": args.quick, "rows": []}
    report["replay"] = {"trials": args.trials, "median_s": args.median, "proposing_s": list(args.propose)}
    started = time.time()
    out = Path(args.out)
    start_ray(num_cpus=max(2, os.cpu_count() or 2), num_gpus=max(256, tune_slots))
    try:
        if "replay" in engines:
            report["leaderboard"] = leaderboard_latency()
            print(json.dumps(report["leaderboard"]), flush=True)
            for slots in (64, 256):
                times = durations(args.trials, args.median)
                for mode in ARMS:
                    row = replay_arm(mode, slots, times, max(1, slots // 32), tuple(args.propose))
                    _record(report, row, started, out)
        if "tune" in engines:
            with tempfile.TemporaryDirectory() as tmp:
                times = durations(tune_trials, tune_median)
                report["tune"] = {"slots": tune_slots, "trials": tune_trials, "median_s": tune_median}
                for mode in tune_modes:  # quick: the new mode through real Tune only
                    _record(report, tune_arm(Path(tmp), mode, tune_slots, times, 1), started, out)
    finally:
        ray.shutdown()
    _record(report, None, started, out)
    print(json.dumps(report["targets"], indent=2))
    print(f"wall {report['wall_seconds']} s; wrote {out}")
    return 0


def _record(report: dict[str, Any], row: dict | None, started: float, out: Path) -> None:
    """Add a row (when given) and rewrite the JSON, so an interrupted run keeps what it measured."""
    from reward_search import io

    if row is not None:
        report["rows"].append(row)
        _print(row)
    report["wall_seconds"] = round(time.time() - started, 1)
    report["targets"] = _targets(report["rows"])
    io.write_json(out, report)


def _targets(rows: list[dict]) -> dict[str, Any]:
    """Steady's efficiency (target >= 0.95) and its conditioning against barrier's (target: within 10%)."""
    out = {}
    for engine, slots in sorted({(r["engine"], r["slots"]) for r in rows}):
        arm = {r["mode"]: r for r in rows if r["engine"] == engine and r["slots"] == slots}
        if "steady" not in arm:
            continue
        steady = arm["steady"]
        trials = steady["trials"]
        # With every slot busy, trial k (from 0) starts when the (k - slots + 1)-th trial finishes: no scheduler that
        # keeps the slots busy can show it more results than that (barrier shows more by idling slots).
        bound = sum(max(0, k - slots + 1) for k in range(trials)) / trials
        row = {
            "busy_scheduler_seen_bound": round(bound, 1),
            "steady_efficiency": steady["scheduling_efficiency"],
            "steady_seen_over_bound": round(steady["conditioning_mean_seen"] / max(bound, 1e-9), 3),
        }
        out[f"{engine}-{slots}"] = row
        if "barrier" not in arm:  # steady alone (a long real-Tune run): its efficiency and the bound
            row["steady_seen"] = steady["conditioning_mean_seen"]
            continue
        barrier = arm["barrier"]
        row.update(
            {
                "busy_bound_ratio_vs_barrier": round(bound / max(barrier["conditioning_mean_seen"], 1e-9), 3),
                "barrier_efficiency": barrier["scheduling_efficiency"],
                "seen_ratio_vs_barrier": round(
                    steady["conditioning_mean_seen"] / max(barrier["conditioning_mean_seen"], 1e-9), 3
                ),
                "freshness_ratio_vs_barrier": round(
                    steady["conditioning_freshness"] / max(barrier["conditioning_freshness"], 1e-9), 3
                ),
            }
        )
    return out


if __name__ == "__main__":
    sys.exit(main())
