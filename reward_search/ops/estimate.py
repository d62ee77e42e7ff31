"""`reward-search estimate EXPERIMENT.yaml --gpus N`: how long and how much a search and its finalize phase cost.

The workload (trials, steps, tokens, questions evaluated) comes from the experiment config; the speeds come from
`reward_search.ops.figures` (measured where a GPU benchmark exists for that model and GPU, assumed otherwise, and
every figure is printed with its source). Trials are placed on GPUs the way Ray Tune would: `gpus_per_trial`
fractions pack several trials on one GPU (with the measured packing gain), and the trials of a phase are
scheduled longest first onto the concurrent slots.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reward_search.config import ExperimentConfig
from reward_search.errors import UserError
from reward_search.ops.figures import GPU_SPEED, RESULTS, Figures, eval_speed, load_figures, packing_gain

ASSUMED_COMPLETION_TOKENS = 400  # mean GRPO completion on GSM8K for a 3B instruct model (random weights never stop)
ASSUMED_TRIAL_OVERHEAD_S = 60.0  # model load, LoRA set-up, Tune start, adapter save
ASSUMED_DDP_EFFICIENCY = 0.9  # a trial on g > 1 GPUs runs g * 0.9 times as fast
FULL_GSM8K = {"train": 7473, "test": 1319}
REFERENCE_GPU_HOURS_PER_CANDIDATE = 2.0  # the reference: about 1 h of GRPO and 1 h of evaluation, one at a time


@dataclass(frozen=True)
class TrialCost:
    """One trial's seconds on its GPU share: training steps and evaluated questions."""

    label: str
    steps: int
    eval_questions: int
    seconds: float


@dataclass(frozen=True)
class PhaseEstimate:
    name: str
    trials: int
    steps: int
    eval_questions: int
    gpu_hours: float
    wall_hours: float
    usd: float


@dataclass(frozen=True)
class Estimate:
    gpus: int
    gpu_type: str
    slots: int
    per_gpu: int
    phases: tuple[PhaseEstimate, ...]
    figures: dict[str, dict[str, Any]]
    assumptions: tuple[str, ...]

    @property
    def total(self) -> PhaseEstimate:
        p = self.phases
        return PhaseEstimate(
            "total",
            sum(x.trials for x in p),
            sum(x.steps for x in p),
            sum(x.eval_questions for x in p),
            sum(x.gpu_hours for x in p),
            sum(x.wall_hours for x in p),
            sum(x.usd for x in p),
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": asdict(self.total)}


def split_sizes(config: ExperimentConfig) -> tuple[int, int]:
    """(dev, test) question counts the config implies: read from the packaged sample or the user's JSONL files,
    assumed to be full GSM8K for a local folder or the hub (never downloaded here)."""
    if config.data.source in ("sample", "jsonl"):
        from reward_search.task import get_task

        splits = get_task(config).load_splits()
        return len(splits.dev), len(splits.test)
    return config.data.dev_size or 500, FULL_GSM8K["test"]


def _step_seconds(config: ExperimentConfig, figures: Figures) -> float:
    t = config.training
    tokens = t.prompts_per_step * t.generations_per_prompt * min(t.max_completion_length, ASSUMED_COMPLETION_TOKENS)
    generation = tokens / figures.generation_tokens_per_s.value
    update = tokens / 1000 * figures.update_s_per_1k_tokens.value
    return (generation + update) * t.gradient_accumulation_steps


def trial_cost(config: ExperimentConfig, figures: Figures, label: str, steps: int, final: bool) -> TrialCost:
    """Seconds of one trial alone on its GPU share: steps, intermediate dev reports and final evaluations."""
    t = config.training
    dev, test = split_sizes(config)
    selection = t.selection_size or (test if t.selection_split == "test" else dev)
    reports = (steps // t.report_every) * t.report_eval_size
    tested = (t.test_size or test) if final else 0
    batch_speed = eval_speed(figures, t.eval_batch_size).value
    report_speed = eval_speed(figures, min(t.report_eval_size, t.eval_batch_size)).value
    seconds = ASSUMED_TRIAL_OVERHEAD_S + steps * _step_seconds(config, figures)
    seconds += (selection + tested) * t.eval_max_new_tokens / batch_speed
    seconds += reports * t.eval_max_new_tokens / report_speed
    return TrialCost(label, steps, selection + tested + reports, seconds)


def placement(config: ExperimentConfig, gpus: int) -> tuple[float, int, int]:
    """(GPUs per trial, trials per GPU, concurrent trials) for `gpus` GPUs."""
    share = config.search.gpus_per_trial or 1.0
    if gpus < share:
        raise UserError(f"--gpus {gpus}: fewer than search.gpus_per_trial ({share})")
    per_gpu = max(1, round(1 / share)) if share < 1 else 1
    slots = int(gpus * per_gpu) if share < 1 else int(gpus // share)
    if config.search.max_concurrent_trials is not None:
        slots = min(slots, config.search.max_concurrent_trials)
    return share, per_gpu, max(1, slots)


def schedule_hours(durations: list[float], slots: int) -> float:
    """Makespan in hours of trials placed longest first on the earliest free slot (how Tune fills slots)."""
    free = [0.0] * min(slots, max(1, len(durations)))
    for seconds in sorted(durations, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + seconds)
    return max(free) / 3600


def _phase(
    name: str, waves: list[list[TrialCost]], share: float, per_gpu: int, slots: int, figures: Figures
) -> PhaseEstimate:
    """Cost of trials run in consecutive waves (a search round, the finalize recipes, then the seeds)."""
    if share < 1:
        stretch = per_gpu / packing_gain(figures, per_gpu).value  # each packed trial runs this much slower
    else:
        stretch = 1 / (share * ASSUMED_DDP_EFFICIENCY) if share > 1 else 1.0
    trials = [c for wave in waves for c in wave]
    wall = sum(schedule_hours([c.seconds * stretch for c in wave], slots) for wave in waves if wave)
    gpu_hours = sum(c.seconds * stretch * share for c in trials) / 3600
    return PhaseEstimate(
        name,
        len(trials),
        sum(c.steps for c in trials),
        sum(c.eval_questions for c in trials),
        gpu_hours,
        wall,
        gpu_hours * figures.usd_per_gpu_hour.value,
    )


def search_waves(config: ExperimentConfig, figures: Figures) -> list[list[TrialCost]]:
    s = config.search
    total = s.rounds * s.candidates_per_round
    if s.max_candidates is not None:
        total = min(total, s.max_candidates)
    cost = trial_cost(config, figures, "screening", config.training.steps, final=False)
    if s.mode in ("async", "steady"):  # no round waits for its slowest trial: one continuous wave
        return [[cost] * total]
    sizes = [min(s.candidates_per_round, total - r * s.candidates_per_round) for r in range(s.rounds)]
    return [[cost] * n for n in sizes if n > 0]


def finalize_waves(config: ExperimentConfig, figures: Figures) -> list[list[TrialCost]]:
    f, steps = config.finalize, config.training.steps
    final_steps = f.steps or steps
    if not f.enabled:
        return []
    jobs = [trial_cost(config, figures, r.name, steps if r.full_budget else final_steps, True) for r in f.recipes]
    jobs += [trial_cost(config, figures, "baseline", final_steps, True)] if f.baseline else []
    jobs += [trial_cost(config, figures, "random", final_steps, True)] if f.random_control else []
    seeds = [trial_cost(config, figures, "seed", final_steps, True)] * max(0, f.seeds - 1)
    return [jobs, seeds]


def estimate(
    config: ExperimentConfig,
    gpus: int,
    gpu_type: str = "h100",
    backend: str | None = None,
    usd: float | None = None,
    results: Path = RESULTS,
) -> Estimate:
    """GPU-hours, wall-clock and dollars for the search and finalize phases of `config` on `gpus` GPUs."""
    gpu_type = gpu_type.lower()
    if gpu_type not in GPU_SPEED:
        raise UserError(f"--gpu-type {gpu_type!r}: unknown; use one of {', '.join(GPU_SPEED)}")
    if gpus < 1:
        raise UserError(f"--gpus {gpus}: must be at least 1")
    if usd is not None and not usd >= 0:  # NaN too
        raise UserError(f"--usd-per-gpu-hour {usd}: a price must be zero or more")
    chosen = backend or ("vllm" if config.training.use_vllm else config.training.generation)
    figures = load_figures(gpu_type, config.model.spec, chosen, usd, results)
    share, per_gpu, slots = placement(config, gpus)
    phases = (
        _phase("search", search_waves(config, figures), share, per_gpu, slots, figures),
        _phase("finalize", finalize_waves(config, figures), share, per_gpu, slots, figures),
    )
    return Estimate(
        gpus=gpus,
        gpu_type=gpu_type,
        slots=slots,
        per_gpu=per_gpu,
        phases=phases,
        figures={name: {"value": f.value, "source": f.source} for name, f in figures.all().items()},
        assumptions=_assumptions(config, share),
    )


def _assumptions(config: ExperimentConfig, share: float) -> tuple[str, ...]:
    t = config.training
    notes = [
        f"mean GRPO completion {min(t.max_completion_length, ASSUMED_COMPLETION_TOKENS)} tokens "
        f"(cap {t.max_completion_length})",
        f"each evaluated question costs eval_max_new_tokens ({t.eval_max_new_tokens}) tokens: a batch runs until "
        "its longest completion ends",
        f"{ASSUMED_TRIAL_OVERHEAD_S:.0f} s per trial for loading, set-up and saving",
        "every proposed candidate passes validation and trains (rejections cost no GPU time)",
    ]
    if not config.search.gpus_per_trial:
        notes.append("search.gpus_per_trial is 0 (a CPU setting): estimated as 1 GPU per trial")
    if share > 1:
        notes.append(f"a trial on {share:g} GPUs runs at {ASSUMED_DDP_EFFICIENCY:.0%} scaling efficiency")
    if t.prompts_per_step * t.generations_per_prompt != 4:
        notes.append("generation tokens/s measured at 4 completions per step is used for this batch (conservative)")
    return tuple(notes)


def format_estimate(result: Estimate, title: str) -> str:
    """The estimate as a table, the figures with their sources, and the assumptions."""
    lines = [
        title,
        f"{result.gpus} x {result.gpu_type}: {result.slots} trials at once ({result.per_gpu} per GPU)",
        "",
        f"{'phase':<10} {'trials':>7} {'steps':>8} {'eval q':>8} {'GPU-hours':>10} {'wall-clock':>11} {'USD':>10}",
    ]
    for p in (*result.phases, result.total):
        lines.append(
            f"{p.name:<10} {p.trials:>7} {p.steps:>8} {p.eval_questions:>8} {p.gpu_hours:>10.1f} "
            f"{_duration(p.wall_hours):>11} {p.usd:>10,.0f}"
        )
    search = result.phases[0]
    if search.trials:
        reference = search.trials * REFERENCE_GPU_HOURS_PER_CANDIDATE
        lines.append(
            f"search vs the reference code (~{REFERENCE_GPU_HOURS_PER_CANDIDATE:g} GPU-hours per candidate, one at a "
            f"time): {reference / max(search.gpu_hours, 1e-9):.1f}x fewer GPU-hours, "
            f"{reference / max(search.wall_hours, 1e-9):.1f}x shorter"
        )
    lines.append("\nfigures:")
    for name, figure in result.figures.items():
        kind = figure["source"].split(":", 1)[0]
        lines.append(f"  {kind:<9} {name:<40} {figure['value']:>10.3g}  {figure['source'].split(':', 1)[-1].strip()}")
    lines.append("assumed throughout:")
    lines.extend(f"  - {note}" for note in result.assumptions)
    return "\n".join(lines)


def _duration(hours: float) -> str:
    if hours < 1:
        return f"{math.ceil(hours * 60)} min"
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} d"


def add_estimate_parser(sub: Any) -> None:
    p = sub.add_parser(
        "estimate",
        help="expected GPU-hours, wall-clock and dollars of a search and its finalize phase",
        description="Estimate a run's cost before starting it, from the GPU figures under benchmarks/results/ "
        "(measured for that model and GPU where they exist; every assumed figure is named).",
    )
    p.add_argument("experiment", help="experiment YAML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--gpus", type=int, required=True, help="GPUs the search may use")
    p.add_argument("--gpu-type", default="h100", help=f"one of {', '.join(GPU_SPEED)} (default h100)")
    p.add_argument("--backend", choices=["hf", "fast", "vllm"], help="generation backend (default: the config's)")
    p.add_argument("--usd-per-gpu-hour", type=float, help="your price (default: an assumed list price)")
    p.add_argument("--json", action="store_true", help="print the estimate as JSON")
    p.add_argument("--figures", default=str(RESULTS), help="folder of benchmark results (default benchmarks/results)")
    p.set_defaults(handler=cmd_estimate)


def cmd_estimate(args: argparse.Namespace) -> int:
    from reward_search.config import load_config

    config = load_config(args.experiment, args.overrides)
    figures = Path(args.figures)
    if not figures.is_dir():
        raise UserError(f"--figures {figures}: not a folder")
    result = estimate(config, args.gpus, args.gpu_type, args.backend, args.usd_per_gpu_hour, figures)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_estimate(result, f"estimate for {args.experiment} (model {config.model.spec})"))
    return 0
