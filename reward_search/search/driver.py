"""The search driver: rounds of proposals screened as Ray Tune trials, recorded in the leaderboard, resumable.

A run directory holds everything: `config.yaml` (resolved), `manifest.json`, `candidates/`, `leaderboard.parquet`,
`driver_state.json` (rounds proposed, proposer state and spend, the proposer call in flight), `trials/<key>/` and
Tune's folders under `tune/`. `run_search` starts or continues a run from that directory alone: finished candidates are
never retrained (their trials are cached by key), interrupted ones resume from their last checkpoint, and a proposer
call cut off mid-round is issued again from the state saved before it, so the same candidates come out.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reward_search import io
from reward_search.candidates.records import LeaderboardEntry
from reward_search.candidates.status import FINISHED, UNTRAINED, WAITING, Status
from reward_search.config import ExperimentConfig, dump_config, load_config, to_plain
from reward_search.errors import UserError
from reward_search.ops.killpoint import kill_point
from reward_search.proposers.base import EmptyRound, Verdict

STATE_FILE = "driver_state.json"
CONFIG_FILE = "config.yaml"
MANIFEST_FILE = "manifest.json"
FEEDBACK_LOG = "feedback.jsonl"  # per round (steady: per batch), the finished results its feedback included


@dataclass
class DriverState:
    """What the driver must remember across restarts besides the leaderboard."""

    proposed_rounds: list[int] = dataclasses.field(default_factory=list)
    proposer_state: dict[str, Any] = dataclasses.field(default_factory=dict)
    proposer_usage: dict[str, Any] = dataclasses.field(default_factory=dict)
    duplicates_skipped: int = 0
    sessions: int = 0
    # The proposer call in flight, saved before it is issued: {round, n, attempts, duplicates_skipped,
    # proposer_state}. A driver killed before the call's candidates were all recorded re-issues it from that state.
    pending_call: dict[str, Any] | None = None

    @classmethod
    def load(cls, run_dir: Path) -> DriverState:
        path = run_dir / STATE_FILE
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text())
        return cls(**{k: v for k, v in data.items() if k in {f.name for f in dataclasses.fields(cls)}})

    def save(self, run_dir: Path) -> None:
        io.write_json(run_dir / STATE_FILE, dataclasses.asdict(self))


def resolve_run_dir(config: ExperimentConfig, run_dir: str | None) -> tuple[ExperimentConfig, Path]:
    """The run directory, and the config with absolute paths (Tune trials run in other working directories)."""
    folder = Path(run_dir) if run_dir else Path(config.run.storage_path) / config.run.name
    folder = folder.expanduser().resolve()
    run = dataclasses.replace(config.run, storage_path=str(folder.parent), name=folder.name)
    data = config.data
    files = ("path", "train_file", "test_file", "dev_file", "prompt_file")  # relative to where the command ran
    absolute = {k: str(Path(v).expanduser().resolve()) for k in files if (v := getattr(data, k))}
    return dataclasses.replace(config, run=run, data=dataclasses.replace(data, **absolute)), folder


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in ("reward-search", "torch", "transformers", "trl", "peft", "ray", "datasets", "litellm"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def prepare_run_dir(config: ExperimentConfig, run_dir: Path) -> None:
    """Write config.yaml and manifest.json for a new run; refuse a folder that holds a different run."""
    existing = run_dir / CONFIG_FILE
    if existing.is_file():
        stored = load_config(existing)
        # where the folder is (run.storage_path, run.name) is not what the run is: a moved or copied run directory
        # is the same run, re-anchored here by resolve_run_dir
        stored = dataclasses.replace(
            stored, run=dataclasses.replace(stored.run, storage_path=config.run.storage_path, name=config.run.name)
        )
        if stored != config:
            from reward_search.config import changed_keys

            differ = ", ".join(changed_keys(stored, config)[:4])
            raise UserError(
                f"{run_dir} already holds a run whose config differs in {differ}; continue that run with "
                f"`reward-search resume {run_dir}` (its own config), or start this one under another run.name or "
                "--run-dir"
            )
        return
    from reward_search.task import get_task
    from reward_search.training.models import CHAT_TEMPLATE_DATE

    run_dir.mkdir(parents=True, exist_ok=True)
    splits = get_task(config).load_splits()
    io.write_text(existing, dump_config(config))
    io.write_json(
        run_dir / MANIFEST_FILE,
        {
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": _versions(),
            "seed": config.run.seed,
            "chat_template_date": CHAT_TEMPLATE_DATE,  # pinned in every chat template that prints a date
            "data": to_plain(splits.manifest),
        },
    )


@dataclass
class _Filling:
    """A round being filled: candidates still wanted, proposer calls made, ids accepted so far."""

    need: int
    attempts: int
    accepted: list[str] = dataclasses.field(default_factory=list)
    skipped: int = 0  # validated but skipped by the cascade (search/cascade.py): they do not fill the round
    prescreens: dict[str, Any] = dataclasses.field(default_factory=dict)  # accepted id -> pre-screen (`order`)


def feedback_results(
    entries: Sequence[LeaderboardEntry], round: int, mode: str, feedback: str
) -> tuple[list[LeaderboardEntry], list[str]]:
    """The entries a round's feedback is built from, and the ids of the finished results it shows: in steady mode
    every finished one, in barrier and async the earlier rounds'; none under `proposer.feedback: none` (the
    unguided control is shown nothing, so nothing conditions it)."""
    if mode == "steady":
        shown = [e for e in entries if e.status not in (Status.PROPOSED, *WAITING)]
    else:
        shown = [e for e in entries if e.round < round]
    results = [] if feedback == "none" else sorted(e.candidate_id for e in shown if e.status in FINISHED)
    return shown, results


class SearchRun:
    """One driver session over a run directory."""

    def __init__(
        self, config: ExperimentConfig, run_dir: Path, leaderboard: Any, proposer: Any, metrics: Any = None
    ) -> None:
        from reward_search.ops.metrics import SearchMetrics

        self.config, self.run_dir, self.leaderboard, self.proposer = config, run_dir, leaderboard, proposer
        self.metrics = metrics or SearchMetrics(config.run.name)
        self.state = DriverState.load(run_dir)
        self.failure: str | None = None  # set when a round ends with no valid candidate
        proposer.attach_run_dir(run_dir)  # the LLM's transcripts of every request and reply under proposals/
        if self.state.proposer_state:
            proposer.load_state(self.state.proposer_state)

    # ----------------------------------------------------------------------------------------- proposing

    def entries(self) -> list[LeaderboardEntry]:
        import ray

        return ray.get(self.leaderboard.all.remote())

    def fill_round(self, round: int, wanted: int) -> list[str]:
        """Propose and validate until `round` has `wanted` accepted candidates (bounded attempts).

        A call that a killed driver left half-recorded (`DriverState.pending_call`) is issued again first, from the
        proposer state saved before it, so the same candidates come out; those already recorded keep their verdicts.
        """
        from reward_search.candidates.candidate import normalise_source
        from reward_search.candidates.sandbox import CandidateRunner
        from reward_search.proposers.feedback import build_feedback

        self.metrics.round(round)
        entries = self.entries()
        have = [e for e in entries if e.round == round and e.status not in (Status.REJECTED, Status.SKIPPED)]
        recorded = {e.candidate_id: e for e in entries if e.round == round}
        seen = {normalise_source(e.source) for e in entries}
        shown, conditioned_on = self.feedback_entries(entries, round)
        feedback = build_feedback(shown, round, self.config.proposer, self.config.selection.metric)
        io.write_text(self.run_dir / "feedback" / f"round-{round}.md", feedback.render())  # linked from the report
        pending = self.state.pending_call if (self.state.pending_call or {}).get("round") == round else None
        filling = _Filling(need=wanted - len(have), attempts=0)
        with CandidateRunner(self.config.candidates.sandbox, self.config.candidates.policy) as runner:
            while pending is not None or (
                filling.need > 0 and filling.attempts < self.config.search.max_proposal_attempts
            ):
                replayed = recorded if pending is not None else {}
                n = self._begin_call(round, filling, pending)
                pending = None
                batch = self.proposer.propose(feedback, n, round)
                kill_point("propose")
                self.metrics.proposed(len(batch))
                verdicts = self._record_batch(batch, round, runner, conditioned_on, seen, replayed, filling)
                self.proposer.note_verdicts(round, verdicts)
                self.state.pending_call = None
                self._save_proposer_state()  # each call's records and spend survive a crash mid-round
        if not filling.accepted and not have and not filling.skipped:
            self._fail_empty_round(round, filling.attempts)
        if self.config.search.prescreen.mode in ("order", "filter"):  # most promising first (search/cascade.py)
            from reward_search.search.cascade import order

            filling.accepted = order(filling.accepted, filling.prescreens)
        self.state.proposed_rounds = sorted({*self.state.proposed_rounds, round})
        self._save_proposer_state()
        usage = self.proposer.usage()
        self.metrics.llm_usage(usage.prompt_tokens + usage.completion_tokens, usage.cost_usd)
        return filling.accepted

    def _begin_call(self, round: int, filling: _Filling, pending: dict[str, Any] | None) -> int:
        """Save the call about to be issued (or restore the interrupted one); the `n` to ask for."""
        if pending is not None:  # replay: the proposer as it was before the interrupted call
            self.proposer.load_state(pending["proposer_state"])
            self.state.duplicates_skipped = int(pending["duplicates_skipped"])
            filling.attempts = int(pending["attempts"])
            n = int(pending["n"])
        else:
            n = filling.need
        self.state.pending_call = {
            "round": round,
            "n": n,
            "attempts": filling.attempts,
            "duplicates_skipped": self.state.duplicates_skipped,
            "proposer_state": self.proposer.state(),
        }
        self.state.save(self.run_dir)
        filling.attempts += 1
        return n

    def _record_batch(
        self,
        batch: Sequence[Any],
        round: int,
        runner: Any,
        conditioned_on: int,
        seen: set[str],
        recorded: dict[str, LeaderboardEntry],
        filling: _Filling,
    ) -> list[Verdict]:
        """Validate and record one call's new candidates in order, until the round is full; the verdicts.

        In a replayed call, the candidates in `recorded` (recorded before the kill) are not validated again: their
        recorded verdicts count.
        """
        from reward_search.candidates.candidate import normalise_source

        verdicts: list[Verdict] = []  # told to the proposer (self-correction)
        for candidate in batch:
            known = recorded.get(candidate.id)
            if known is not None:  # the round's `have` already counts it
                passed = known.status not in (Status.REJECTED, Status.SKIPPED)
                verdicts.append((known.candidate_id, known.name, passed, known.reasons))
                filling.skipped += known.status == Status.SKIPPED
                continue
            if filling.need <= 0:
                break
            shape = normalise_source(candidate.source)
            if shape in seen:
                self.state.duplicates_skipped += 1
                continue
            seen.add(shape)
            added_id, status, prescreen = self._record_candidate(candidate, runner, round, conditioned_on, verdicts)
            kill_point("validate")
            if added_id is not None and status == Status.ACCEPTED:
                filling.accepted.append(added_id)
                filling.prescreens[added_id] = prescreen
                filling.need -= 1
            filling.skipped += status == Status.SKIPPED
        return verdicts

    def _record_candidate(
        self,
        candidate: Any,
        runner: Any,
        round: int,
        conditioned_on: int,
        verdicts: list[Verdict],
    ) -> tuple[str | None, Status, dict[str, Any] | None]:
        """Validate one new candidate, add it to the leaderboard and to `verdicts`: its id when newly added, its
        status and its pre-screen."""
        import ray

        from reward_search.candidates.validation import validate_candidate
        from reward_search.proposers.base import PROTECTED_NAMES

        if candidate.name in PROTECTED_NAMES:
            verdict_candidate = candidate.with_verdict(Status.REJECTED, ("name clashes with a base reward",))
            status, reasons = Status.REJECTED, ["name clashes with a base reward"]
            self.metrics.validated(False, "name")
        else:
            verdict = validate_candidate(candidate, runner, self.config.candidates)
            self.metrics.validated(verdict.accepted, verdict.stage)
            verdict_candidate = verdict.candidate or candidate
            status = Status.ACCEPTED if verdict.accepted else Status.REJECTED
            reasons = [f"{verdict.stage}: {r}" for r in verdict.reasons]
            if verdict.accepted:
                verdict_candidate, status, reasons = self._cascade(verdict_candidate, reasons)
        added = ray.get(
            self.leaderboard.add_candidate.remote(verdict_candidate.to_dict(), round, status, reasons, conditioned_on)
        )
        verdicts.append((candidate.id, candidate.name, status == Status.ACCEPTED, reasons))
        return verdict_candidate.id if added else None, status, (verdict_candidate.probe or {}).get("prescreen")

    def _cascade(self, candidate: Any, reasons: list[str]) -> tuple[Any, Status, list[str]]:
        """The cascade's decision for a validated candidate (search/cascade.py), recorded in its probe report
        (`cascade`) and reasons: a skipped one is `skipped`, never trained."""
        from reward_search.proposers.planted import PLANTED
        from reward_search.search.cascade import decide, peers

        probe = dict(candidate.probe or {})
        planted = candidate.origin.proposer == PLANTED
        decision = decide(probe.get("prescreen"), self.config.search.prescreen, peers(self.entries()), planted)
        if decision.reason is None:
            return candidate, Status.ACCEPTED, reasons
        probe["cascade"] = decision.to_dict()
        if not decision.skip:
            return candidate.with_verdict(Status.ACCEPTED, (), probe), Status.ACCEPTED, [*reasons, decision.reason]
        reasons = [*reasons, f"skipped, not trained: {decision.reason}"]
        return candidate.with_verdict(Status.SKIPPED, tuple(reasons), probe), Status.SKIPPED, reasons

    def _save_proposer_state(self) -> None:
        """Persist the proposer's state and spend with the driver state (a restart continues from them)."""
        self.state.proposer_state = self.proposer.state()
        self.state.proposer_usage = self.proposer.usage().to_dict()
        self.state.save(self.run_dir)

    def _fail_empty_round(self, round: int, calls: int) -> None:
        """Stop the search loudly: no valid reward came from this round's proposer calls (state is kept)."""
        self._save_proposer_state()
        summary = self.proposer.round_summary(round)
        self.failure = (
            f"round {round}: no valid reward in {calls} proposer calls: {summary} "
            f"({self.run_dir / 'proposals' / f'round-{round}'}/)"
        )
        raise EmptyRound(self.failure)

    def feedback_entries(self, entries: list[LeaderboardEntry], round: int) -> tuple[list[LeaderboardEntry], int]:
        """What a round's feedback shows, and how many finished trial results it includes.

        Steady mode shows every finished result, whatever its batch; barrier and async show the earlier rounds.
        The included results are listed, one line per round, in `feedback.jsonl`, so the claim can be checked; with
        `proposer.feedback: none` (the unguided control) none are, and every candidate's `conditioned_on` is 0.
        """
        shown, results = feedback_results(entries, round, self.config.search.mode, self.config.proposer.feedback)
        withheld = self.config.proposer.feedback == "none"
        line = {"round": round, "mode": self.config.search.mode, "results": results, "time": time.time()}
        line |= {"withheld": True} if withheld else {}
        with (self.run_dir / FEEDBACK_LOG).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")
        return shown, len(results)

    def budget_reason(self) -> str | None:
        """Why no further round may start, or None."""
        import ray

        search = self.config.search
        summary = ray.get(self.leaderboard.summary.remote())
        self.metrics.gpu_hours(summary["gpu_hours"])
        if search.max_candidates is not None and summary["candidates"] >= search.max_candidates:
            return f"candidate budget reached ({summary['candidates']} >= {search.max_candidates})"
        if search.budget_gpu_hours is not None and summary["gpu_hours"] >= search.budget_gpu_hours:
            return f"GPU-hour budget reached ({summary['gpu_hours']:.2f} >= {search.budget_gpu_hours})"
        spent = float(self.proposer.usage().cost_usd)
        if search.budget_usd is not None and spent >= search.budget_usd:
            return f"LLM budget reached (${spent:.2f} >= ${search.budget_usd})"
        return None

    # ----------------------------------------------------------------------------------------- trials

    def make_params(self, entry: LeaderboardEntry) -> dict[str, Any]:
        """A trial's params: the candidate exactly as validation recorded it (`candidates/<id>.json`, verdict and
        probe report included, so its spot re-probes run), never rebuilt from its leaderboard row."""
        from reward_search.candidates.candidate import CandidateStore
        from reward_search.training.spec import RewardSpec
        from reward_search.training.trainable import trial_params

        candidate = CandidateStore(self.run_dir / "candidates").accepted(entry.candidate_id)
        spec = RewardSpec((candidate,), base_rewards=self.config.training.base_rewards)
        return trial_params(
            self.config, spec, None, round=entry.round, candidate=entry.name, candidate_id=entry.candidate_id
        )

    def resume_point(self) -> tuple[int, set[int], list[tuple[int, str]]]:
        """(last round started, rounds fully proposed, candidates to screen) from the run directory."""
        from reward_search.candidates.candidate import CandidateStore

        entries = self.entries()
        started = max((e.round for e in entries), default=0)
        proposed = set(self.state.proposed_rounds)
        queue = [(e.round, e.candidate_id) for e in entries if e.status in WAITING]
        store = CandidateStore(self.run_dir / "candidates")
        for _, cid in queue:  # a missing or unreadable record stops the resume here, naming the file
            store.accepted(cid)
        return max(started, max(proposed, default=0)), proposed, sorted(queue)


def _trial_name(trial: Any) -> str:
    config = trial.config
    return f"r{config.get('round', 0)}-{config.get('candidate', 'trial')}-{trial.trial_id[-5:]}"


@dataclass
class SearchOutcome:
    run_dir: Path
    entries: list[LeaderboardEntry]
    stop_reason: str | None
    dashboard_url: str | None
    seconds: float


def run_search(
    config: ExperimentConfig,
    run_dir: str | Path | None = None,
    address: str | None = None,
    trainable: Callable[[dict[str, Any]], None] | None = None,
    resume: bool = False,
    verbose: bool = True,
    proposer: Any = None,
    finalize: bool = True,
    finalize_trainable: Callable[[dict[str, Any]], None] | None = None,
) -> SearchOutcome:
    """Run (or continue) a search under its run id, holding the run directory's lease (see `search/lease.py`).

    A second live driver on the same run directory is refused with one line naming the holder; a stale lease is
    taken over. The search runs until its rounds or budgets are exhausted, then the finalize phase runs when
    `finalize` and `config.finalize.enabled`. `trainable` replaces the screening run and `finalize_trainable` the
    finalize trials (tests of scheduling use cheap ones, or pass `finalize=False`); `proposer` replaces the
    configured proposer (tests inject an LLM proposer with canned replies).

    The steps: `_open_run` (checks, run directory, run id), then under the lease `_search_session`: `_connect`,
    `_build_proposer`, `_make_searcher`, `_screen` (the propose/screen loop as Tune trials), `_collect` and
    `_finalize`.
    """
    from reward_search.search.lease import RunLease

    config, folder, run_id = _open_run(config, run_dir, address, resume, proposer)
    with RunLease(folder, run_id) as lease:
        if verbose and lease.took_over is not None:
            print(f"took over a stale lease ({lease.took_over.describe()})", file=sys.stderr)
        return _search_session(
            config, folder, run_id, address, trainable, verbose, proposer, finalize, finalize_trainable
        )


def _open_run(
    config: ExperimentConfig, run_dir: str | Path | None, address: str | None, resume: bool, proposer: Any
) -> tuple[ExperimentConfig, Path, str]:
    """Check what can fail before Ray starts, write the run directory and return it with its config and run id."""
    from reward_search.search.runid import ensure_run_id
    from reward_search.training.placement import preflight

    config, folder = resolve_run_dir(config, str(run_dir) if run_dir else None)
    if resume and not (folder / CONFIG_FILE).is_file():
        raise UserError(f"{folder}: not a run directory (no {CONFIG_FILE})")
    preflight(config, address)  # bitsandbytes, and a local Ray's GPUs: one line, exit 2, before Ray starts
    if config.proposer.kind == "llm" and config.proposer.api_base and proposer is None:
        from reward_search.proposers.endpoint import check_api_base

        check_api_base(config.proposer.api_base)  # a model server that is not there: one line, exit 2
    prepare_run_dir(config, folder)
    return config, folder, ensure_run_id(folder, config.run.name)


def _search_session(
    config: ExperimentConfig,
    folder: Path,
    run_id: str,
    address: str | None,
    trainable: Callable[[dict[str, Any]], None] | None,
    verbose: bool,
    proposer: Any,
    finalize: bool,
    finalize_trainable: Callable[[dict[str, Any]], None] | None,
) -> SearchOutcome:
    """One driver session over a prepared run directory (the lease held): the steps of `run_search` in order."""
    from reward_search.ops.metrics import SearchMetrics
    from reward_search.ops.tracking import start_tracking
    from reward_search.search.leaderboard import leaderboard_actor

    started = time.time()
    tracking = start_tracking(config, folder)  # a missing extra: one line, exit 2; an unreachable URI: a warning
    dashboard, shared = _connect(config, folder, address, run_id, verbose)
    leaderboard = leaderboard_actor(folder, run_id, config.selection.metric)
    if proposer is None:
        proposer = _build_proposer(config)
    run = SearchRun(config, folder, leaderboard, proposer, SearchMetrics(run_id, config.run.name))
    run.state.sessions += 1
    run.state.save(folder)
    searcher, cap, queued = _make_searcher(run, shared, run_id, verbose)
    _screen(run, searcher, cap, queued, trainable or _screening_trainable(), tracking.callbacks, verbose)
    entries, searched_all = _collect(run, searcher, tracking, verbose)
    if finalize:
        _finalize(run, entries, searcher, searched_all, finalize_trainable, verbose)
    if verbose:
        print(f"report: reward-search report {folder}", file=sys.stdout)
    return SearchOutcome(folder, entries, searcher.stop_reason, dashboard, time.time() - started)


def _connect(
    config: ExperimentConfig, folder: Path, address: str | None, run_id: str, verbose: bool
) -> tuple[str | None, bool]:
    """Start or join Ray in the run's namespace: its dashboard URL, and whether the cluster may be shared."""
    import ray

    from reward_search.search.tuner import connect_ray, ray_address

    address = ray_address(address)
    shared = address is not None and not ray.is_initialized()  # an existing cluster, maybe other users' too
    context = connect_ray(address, run_id, dashboard=config.search.dashboard)
    dashboard = getattr(context, "dashboard_url", None) or None
    if verbose:
        from reward_search.ops.auth import dashboard_hint

        where = f"Ray at {address}" if address else "a local Ray"
        print(
            f"run directory: {folder}\nusing {where}" + (f"; {dashboard_hint(dashboard)}" if dashboard else ""),
            file=sys.stderr,
        )
    return dashboard, shared


def _build_proposer(config: ExperimentConfig) -> Any:
    """The configured proposer, given the training questions (the evolutionary proposer draws from them)."""
    from reward_search.proposers.registry import make_proposer
    from reward_search.task import get_task

    task = get_task(config)
    return make_proposer(
        config.proposer,
        task=task,
        train=task.load_splits().train,
        allowed_imports=config.candidates.policy.allowed_imports,
    )


def _make_searcher(run: SearchRun, shared: bool, run_id: str, verbose: bool) -> tuple[Any, int, int]:
    """The Tune searcher, primed where the run directory left off; its trial cap and the candidates queued."""
    import ray

    from reward_search.search.searcher import RewardSearcher
    from reward_search.search.sharing import barrier_warning, trial_cap

    search = run.config.search
    cap = trial_cap(search, ray.cluster_resources(), shared)  # this search's share of the trial slots
    warning = barrier_warning(search, cap)
    if verbose:
        print(f"run id {run_id}; up to {cap} trials at once", file=sys.stderr)
        if warning:
            print(f"note: {warning}", file=sys.stderr)
    searcher = RewardSearcher(
        run.leaderboard,
        run.fill_round,
        run.make_params,
        search.rounds,
        search.candidates_per_round,
        mode=search.mode,
        gpus_per_trial=search.gpus_per_trial,
        budget_stop_reason=run.budget_reason,
        slots=cap,
        max_staleness=search.max_staleness,
    )
    last_round, proposed, queue = run.resume_point()
    accepted_total = sum(e.status not in UNTRAINED for e in run.entries())
    searcher.prime(last_round, proposed, queue, accepted_total)
    return searcher, cap, len(queue)


def _screening_trainable() -> Callable[[dict[str, Any]], None]:
    from reward_search.training.trainable import screening_trainable

    return screening_trainable


def _screen(
    run: SearchRun,
    searcher: Any,
    cap: int,
    queued: int,
    trainable: Callable[[dict[str, Any]], None],
    callbacks: Sequence[Any],
    verbose: bool,
) -> None:
    """The propose/screen loop: Tune asks the searcher for trials (it proposes rounds) and runs them to the end."""
    from reward_search.search.progress import SearchProgress
    from reward_search.search.tuner import asha_scheduler, build_tuner, pending_trials

    search = run.config.search
    scheduler = asha_scheduler(run.config)
    searcher.scheduler_stopped = getattr(scheduler, "stopped", set())  # the trials ASHA stopped are `stopped`
    with pending_trials(cap):
        tuner = build_tuner(
            run.config,
            run.run_dir,
            trainable,
            f"session-{run.state.sessions}",
            _trial_name,
            SearchProgress(verbose=verbose, metrics=run.metrics),
            cap,
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=search.rounds * search.candidates_per_round + queued,
            callbacks=callbacks,
        )
        tuner.fit()


def _collect(run: SearchRun, searcher: Any, tracking: Any, verbose: bool) -> tuple[list[LeaderboardEntry], bool]:
    """After the trials: the leaderboard's entries and whether every round was searched (or a stop was reached).

    The leaderboard is compacted, the spend saved and the leaderboard printed; a round without any valid reward
    raises (exit 1), so that no finalize runs on an empty leaderboard.
    """
    import ray

    config = run.config
    ray.get(run.leaderboard.compact.remote())  # the Parquet snapshot is complete whenever no driver runs
    run.metrics.gpu_hours(ray.get(run.leaderboard.summary.remote())["gpu_hours"])
    entries = run.entries()
    tracking.log_leaderboard(entries, config.selection.metric)
    run.state.proposer_usage = run.proposer.usage().to_dict()
    run.state.save(run.run_dir)
    steady_done = config.search.mode == "steady" and searcher.searched_all()
    searched_all = (
        searcher.stop_reason is not None
        or steady_done
        or set(run.state.proposed_rounds) >= set(range(1, config.search.rounds + 1))
    )
    if verbose:
        from reward_search.search.progress import print_leaderboard

        print_leaderboard(entries, stream=sys.stdout, metric=config.selection.metric)
        if searcher.stop_reason and not run.failure:
            print(f"stopped: {searcher.stop_reason}", file=sys.stderr)
    if run.failure:
        raise UserError(run.failure, exit_code=1)
    return entries, searched_all


def _finalize(
    run: SearchRun,
    entries: list[LeaderboardEntry],
    searcher: Any,
    searched_all: bool,
    finalize_trainable: Callable[[dict[str, Any]], None] | None,
    verbose: bool,
) -> None:
    """The finalize phase, when enabled and the search finished cleanly with at least one screened candidate."""
    config = run.config
    screened = any(e.status == Status.DONE for e in entries)
    if not (config.finalize.enabled and searched_all and screened and not searcher.errors):
        return
    from reward_search.search.finalize import finalize_run, finalize_table

    if verbose:
        print(
            "finalize: ensembles, baseline, random control and seeds (ranked on dev, then test once)",
            file=sys.stderr,
        )
    final = finalize_run(config, run.run_dir, entries, trainable=finalize_trainable, verbose=verbose)
    if verbose:
        print(finalize_table(final), file=sys.stdout)


def finalize_only(config: ExperimentConfig, run_dir: str | Path, address: str | None = None) -> dict[str, Any]:
    """`reward-search finalize RUN_DIR`: the finalize phase over a run directory's leaderboard."""
    from reward_search.search.finalize import finalize_run
    from reward_search.search.leaderboard import load_entries
    from reward_search.search.runid import ensure_run_id
    from reward_search.search.tuner import connect_ray

    config, folder = resolve_run_dir(config, str(run_dir))
    entries = load_entries(folder)
    if not any(e.status == Status.DONE for e in entries):
        raise UserError(f"{folder}: no screened candidates yet; run or resume the search first")
    connect_ray(address, ensure_run_id(folder, config.run.name), dashboard=False)
    return finalize_run(config, folder, entries)
