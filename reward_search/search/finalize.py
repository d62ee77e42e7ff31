"""The finalize phase: ensembles of the best rewards, a base-only baseline, a random control and seed re-runs.

Every job is a declared, seeded screening trial run through the same Tune machinery (so it is cached by its trial
key and resumes like any trial). Recipes are ranked on the dev split; every job is also evaluated once on the full
test split, which the search itself never touched. The outcome is `finalize.json` in the run directory.

A job's identity (`job_identity`) is everything that makes it train differently: its rewards, the training config
with its steps and seed, the model and the data; never its label. Jobs with one identity (say `top5` and
`top5_full` when `finalize.steps` equals `training.steps`, or the first seed re-run and the best recipe) train once
and the result is reported under each label, with `same_job_as` naming the job that ran. An ensemble member whose
sandboxed call fails scores 0 for that batch and the failure is recorded (`training.member_failure: zero`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reward_search import io
from reward_search.candidates.candidate import CandidateStore, RewardCandidate
from reward_search.candidates.records import LeaderboardEntry, rank_entries, rank_values
from reward_search.candidates.status import UNTRAINED, Status
from reward_search.config import ExperimentConfig, RecipeConfig, to_plain
from reward_search.training.spec import RewardSpec

FINALIZE_FILE = "finalize.json"
CONTROL_KINDS = ("baseline", "random")  # jobs that are compared with, never selected


@dataclass
class FinalJob:
    """One finalize trial: a named reward spec with its training budget and seed."""

    name: str
    kind: str  # recipe kind, "baseline", "random" or "seed"
    members: list[str]  # candidate names, in spec order
    member_ids: list[str]
    steps: int
    seed: int
    spec: RewardSpec = field(repr=False)
    result: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("spec")
        return data


# An ensemble member's candidate from its leaderboard entry: `stored_members(run_dir)` in a run.
MemberLoader = Callable[[LeaderboardEntry], RewardCandidate]


def stored_members(run_dir: Path) -> MemberLoader:
    """Members as validation recorded them (`candidates/<id>.json`, probe report included, so their spot re-probes
    run in the ensemble); a missing or unreadable record is a `CandidateRecordError` naming the file."""
    store = CandidateStore(run_dir / "candidates")
    return lambda entry: store.accepted(entry.candidate_id)


def _unique_members(entries: Sequence[LeaderboardEntry]) -> list[LeaderboardEntry]:
    """Entries with distinct reward names (TRL logs by name), best first."""
    chosen: list[LeaderboardEntry] = []
    names: set[str] = set()
    for entry in entries:
        if entry.name not in names:
            names.add(entry.name)
            chosen.append(entry)
    return chosen


def control_pool(entries: Sequence[LeaderboardEntry]) -> list[LeaderboardEntry]:
    """The candidates the random control draws from: every trained candidate (never a rejected one, nor one the
    cascade skipped: `UNTRAINED`) except the ones whose trial showed
    the reward itself to be bad (`crashed`: it kept failing in the sandbox; `failed` with a re-probe reason: it
    answered a spot re-probe differently from validation). A reward failed for infrastructure stays in the pool,
    so the control still draws from what the proposer wrote, not from what screened well."""
    return [e for e in entries if e.status not in UNTRAINED and e.status != Status.CRASHED and not _reprobe_failed(e)]


def _reprobe_failed(entry: LeaderboardEntry) -> bool:
    return entry.status == Status.FAILED and any("re-probe" in reason for reason in entry.reasons)


def probe_discrimination(entry: LeaderboardEntry) -> float:
    """How far a reward's probe scores separate correct from wrong answers, relative to its score range."""
    probe = entry.probe or {}
    spread = (probe.get("score_max") or 0.0) - (probe.get("score_min") or 0.0)
    gap = (probe.get("mean_correct") or 0.0) - (probe.get("mean_wrong") or 0.0)
    return gap / spread if spread > 0 else 0.0


def recipe_members(recipe: RecipeConfig, ranked: Sequence[LeaderboardEntry]) -> list[LeaderboardEntry]:
    """The screened candidates a recipe combines (ranked = done entries, best first on dev)."""
    if recipe.kind == "top_k":
        return _unique_members(ranked)[: recipe.k]
    if recipe.kind == "diverse":
        best_of_round: dict[int, LeaderboardEntry] = {}
        for entry in ranked:
            best_of_round.setdefault(entry.round, entry)
        return _unique_members([best_of_round[r] for r in sorted(best_of_round)])[: recipe.k]
    if recipe.kind == "correctness":
        pool = _unique_members(ranked)[: 2 * recipe.k]
        return sorted(pool, key=lambda e: (-probe_discrimination(e), ranked.index(e)))[: recipe.k]
    raise ValueError(f"unknown recipe kind {recipe.kind!r}")


def plan_jobs(
    config: ExperimentConfig,
    ranked: Sequence[LeaderboardEntry],
    validated: Sequence[LeaderboardEntry],
    member: MemberLoader,
) -> list[FinalJob]:
    """The recipes, the baseline and the random control (the seed jobs follow once recipes are ranked); `member`
    gives each member's candidate (`stored_members`)."""
    final = config.finalize
    final_steps = final.steps or config.training.steps
    jobs = []
    for recipe in final.recipes:
        members = recipe_members(recipe, ranked)
        if not members:
            continue
        steps = config.training.steps if recipe.full_budget else final_steps
        spec = RewardSpec(
            tuple(member(e) for e in members), base_rewards=config.training.base_rewards, label=recipe.name
        )
        jobs.append(
            FinalJob(
                recipe.name,
                recipe.kind,
                [e.name for e in members],
                [e.candidate_id for e in members],
                steps,
                config.run.seed,
                spec,
            )
        )
    if final.baseline:
        jobs.append(
            FinalJob(
                "baseline",
                "baseline",
                [],
                [],
                final_steps,
                config.run.seed,
                RewardSpec((), base_rewards=True, label="baseline"),
            )
        )
    if final.random_control and validated:
        pool = _unique_members(sorted(validated, key=lambda e: e.candidate_id))
        drawn = random.Random(final.random_seed).sample(pool, min(final.random_k, len(pool)))
        spec = RewardSpec(tuple(member(e) for e in drawn), base_rewards=config.training.base_rewards, label="random")
        jobs.append(
            FinalJob(
                "random",
                "random",
                [e.name for e in drawn],
                [e.candidate_id for e in drawn],
                final_steps,
                config.run.seed,
                spec,
            )
        )
    return jobs


def seed_jobs(config: ExperimentConfig, best: FinalJob) -> list[FinalJob]:
    """Re-trainings of the best recipe with seeds run.seed, run.seed+1, ... (the first is the recipe itself)."""
    return [
        dataclasses.replace(
            best, name=f"{best.name}@seed{config.run.seed + i}", kind="seed", seed=config.run.seed + i, result={}
        )
        for i in range(config.finalize.seeds)
    ]


def job_config(config: ExperimentConfig, job: FinalJob) -> ExperimentConfig:
    """The experiment config a job trains with: its steps and seed, a test evaluation at the end, and members
    whose failed calls score 0 instead of ending the job."""
    training = dataclasses.replace(config.training, steps=job.steps, eval_test=True, member_failure="zero")
    if job.kind in CONTROL_KINDS and not config.finalize.controls_on_dev:  # one evaluation, on test
        training = dataclasses.replace(training, selection_split="test", selection_size=training.test_size)
    return dataclasses.replace(config, training=training, run=dataclasses.replace(config.run, seed=job.seed))


def job_identity(config: ExperimentConfig, job: FinalJob) -> str:
    """A hash of everything that makes a job train differently (rewards, training, seed, model, data), not its label."""
    resolved = job_config(config, job)
    payload = {
        "rewards": job.spec.describe(),
        "training": to_plain(resolved.training),
        "seed": resolved.run.seed,
        "model": to_plain(resolved.model),
        "data": to_plain(resolved.data),
        "eval": to_plain(resolved.eval),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def group_jobs(
    config: ExperimentConfig, jobs: Sequence[FinalJob], known: dict[str, FinalJob] | None = None
) -> tuple[list[FinalJob], dict[str, list[FinalJob]]]:
    """The jobs that must run (one per identity not in `known`) and every job grouped under its identity."""
    groups: dict[str, list[FinalJob]] = {}
    for job in jobs:
        groups.setdefault(job_identity(config, job), []).append(job)
    known = known or {}
    return [group[0] for identity, group in groups.items() if identity not in known], groups


def _share_results(groups: dict[str, list[FinalJob]], known: dict[str, FinalJob]) -> None:
    """Copy each identity's result to every other label of it, naming the job that ran."""
    for identity, group in groups.items():
        ran = known.get(identity, group[0])
        for job in group:
            if job is not ran:
                job.result = {**ran.result, "same_job_as": ran.name}
        known.setdefault(identity, ran)


def _finalize_trainable(params: dict[str, Any]) -> None:
    from reward_search.training.trainable import screening_trainable

    screening_trainable(params["job"])


def run_jobs(
    config: ExperimentConfig,
    run_dir: Path,
    jobs: Sequence[FinalJob],
    phase: str,
    trainable: Callable[[dict[str, Any]], None] | None = None,
    verbose: bool = True,
    known: dict[str, FinalJob] | None = None,
) -> None:
    """Run jobs as Tune trials (cached by trial key), one trial per identity; attach the final report to every job.

    `known` maps identities already run (an earlier phase) to their job; it gains this phase's jobs.
    """
    known = {} if known is None else known
    to_run, groups = group_jobs(config, jobs, known)
    _run_trials(config, run_dir, to_run, phase, trainable, verbose)
    _share_results(groups, known)


def _run_trials(
    config: ExperimentConfig,
    run_dir: Path,
    jobs: Sequence[FinalJob],
    phase: str,
    trainable: Callable[[dict[str, Any]], None] | None,
    verbose: bool,
) -> None:
    """Run one Tune trial per job, as a grid through the search's Tuner builder, and record each job's result."""
    from ray import tune

    from reward_search.search.progress import SearchProgress
    from reward_search.search.tuner import build_tuner
    from reward_search.training.trainable import trial_params

    if not jobs:
        return
    params = [
        trial_params(job_config(config, job), job.spec, None, round=0, candidate=job.name, job_name=job.name)
        for job in jobs
    ]

    def name(trial: Any) -> str:
        return f"{phase}-{trial.config['job']['job_name']}-{trial.trial_id[-5:]}"

    tuner = build_tuner(  # the same placement as screening trials
        config,
        run_dir,
        trainable or _finalize_trainable,
        f"finalize-{phase}-{int(time.time())}",
        name,
        SearchProgress(verbose=verbose),
        config.search.max_concurrent_trials,
        param_space={"job": tune.grid_search(params)},
    )
    _record_results(jobs, tuner.fit(), phase, verbose)


def _record_results(jobs: Sequence[FinalJob], grid: Any, phase: str, verbose: bool) -> None:
    """Attach each trial's final report (or its failure) to its job, printing one line per job when verbose."""
    by_name = {job.name: job for job in jobs}
    for result in grid:
        job = by_name[result.config["job"]["job_name"]]
        report = dict(result.metrics or {})
        if result.error is not None or not report.get("final"):
            job.result = {"status": Status.FAILED.value, "error": str(result.error or "no final report")}
        else:
            job.result = _test_from_selection({k: report.get(k) for k in _RESULT_KEYS}, job.kind in CONTROL_KINDS)
            job.result["member_failures"] = _member_failures(report.get("candidate_failures_json"))
        if verbose:
            accuracy = job.result.get("selection_accuracy")
            test = job.result.get("test_accuracy")
            print(
                f"finalize {phase}: {job.name} {job.result.get('status')} dev {_fmt(accuracy)} test {_fmt(test)}",
                file=sys.stderr,
            )


_RESULT_KEYS = (
    "status",
    "error",
    "trial_key",
    "trial_dir",
    "selection_split",
    "selection_accuracy",
    "selection_f1",
    "selection_correct",
    "selection_n",
    "selection_gold_logprob",
    "test_gold_logprob",
    "test_accuracy",
    "test_f1",
    "test_correct",
    "test_n",
    "train_seconds",
    "cached",
)


def _test_from_selection(result: dict[str, Any], control: bool = False) -> dict[str, Any]:
    """A job that selected on test evaluated test once, as its selection split: report those as its test numbers.
    A control's selection numbers are then not dev numbers and are cleared (no control is ever selected)."""
    if result.get("selection_split") == "test" and result.get("test_accuracy") is None:
        for name in ("accuracy", "f1", "correct", "n", "gold_logprob"):
            result[f"test_{name}"] = result.get(f"selection_{name}")
            if control:
                result[f"selection_{name}"] = None
    return result


def _member_failures(text: Any) -> dict[str, int]:
    """Failed (zeroed) calls per ensemble member, from the trial's sandbox counters; members without any omitted."""
    try:
        counters = json.loads(text) if isinstance(text, str) else {}
    except json.JSONDecodeError:
        return {}
    suffix = "/zeroed_calls"
    return {
        key.removeprefix("sandbox/").removesuffix(suffix): int(value)
        for key, value in counters.items()
        if key.endswith(suffix) and value
    }


def _status(result: dict[str, Any]) -> str:
    twin = result.get("same_job_as")
    return f"{result.get('status', '?')} (= {twin})" if twin else str(result.get("status", "?"))


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "-"


def best_job(jobs: Sequence[FinalJob], metric: str = "accuracy") -> FinalJob | None:
    """The recipe that ranks best on dev under the one ranking rule (`records.rank_values`: accuracy and the gold
    log-prob, in the order `selection.metric` names; then fewer members, then the job name). The baseline and the
    control never count."""
    candidates = [
        j
        for j in jobs
        if j.kind not in (*CONTROL_KINDS, "seed")
        and j.result.get("status") == Status.DONE
        and j.result.get("selection_accuracy") is not None
    ]

    def key(job: FinalJob) -> tuple[float, float, int, str]:
        first, second = rank_values(job.result["selection_accuracy"], job.result.get("selection_gold_logprob"), metric)
        return (-first, -second, len(job.members), job.name)

    return min(candidates, key=key, default=None)


def finalize_run(
    config: ExperimentConfig,
    run_dir: Path,
    entries: Sequence[LeaderboardEntry],
    trainable: Callable[[dict[str, Any]], None] | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Plan and run every finalize job, then write `finalize.json`; Ray must already be initialised."""
    ranked = rank_entries(entries, config.selection.metric)
    jobs = plan_jobs(config, ranked, control_pool(entries), stored_members(run_dir))
    known: dict[str, FinalJob] = {}
    run_jobs(config, run_dir, jobs, "recipes", trainable, verbose, known)
    from reward_search.ops.killpoint import kill_point  # a test hook, inert unless its variable is set

    kill_point("finalize")
    best = best_job(jobs, config.selection.metric)
    seeds = seed_jobs(config, best) if best is not None else []
    run_jobs(config, run_dir, seeds, "seeds", trainable, verbose, known)
    outcome = {
        "selection_split": config.training.selection_split,
        "mcnemar": config.analysis.mcnemar,
        "best_recipe": best.name if best else None,
        "jobs": [job.to_dict() for job in [*jobs, *seeds]] + untrained_rows(config, run_dir, verbose),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    io.write_json(run_dir / FINALIZE_FILE, outcome)
    return outcome


def untrained_rows(config: ExperimentConfig, run_dir: Path, verbose: bool = True) -> list[dict[str, Any]]:
    """The `untrained` row (the base model without training, evaluated once per fingerprint and cached), when
    `finalize.untrained` is on; see `search/untrained.py`."""
    if not config.finalize.untrained:
        return []
    from reward_search.search.untrained import untrained_job

    return [untrained_job(config, run_dir, verbose=verbose)]


def finalize_table(outcome: dict[str, Any]) -> str:
    """The finalize jobs as a table: dev accuracy (used to pick the best recipe) and the one test evaluation."""
    lines = [f"{'job':<28} {'kind':<12} {'rewards':>7} {'dev acc':>8} {'test acc':>9} {'test F1':>8} {'status':<8}"]
    for job in outcome["jobs"]:
        r = job["result"]
        lines.append(
            f"{job['name'][:28]:<28} {job['kind']:<12} {len(job['members']):>7} {_fmt(r.get('selection_accuracy')):>8} "
            f"{_fmt(r.get('test_accuracy')):>9} {_fmt(r.get('test_f1')):>8} {_status(r):<8}"
        )
    lines.append(f"best recipe on {outcome.get('selection_split') or 'dev'}: {outcome.get('best_recipe')}")
    from reward_search.search.untrained import outcome_lines

    return "\n".join(lines + outcome_lines(outcome))
