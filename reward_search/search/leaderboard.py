"""The leaderboard: every candidate's status and result, persisted as it changes, ranked views.

`LeaderboardCore` is plain Python (tested directly); `leaderboard_actor` wraps it as a named Ray actor in the run's
own namespace (named by the run id, so two runs called `paper` never share it), restarted by Ray if it dies.
Each change is one line appended to `leaderboard.events.jsonl` (constant cost whatever the number of candidates);
every `compact_every` events, and on `compact()`, the whole board is written to `leaderboard.parquet` and the log is
emptied. Loading reads the Parquet snapshot and replays the log. Changes carry event ids, so a call Ray retries
after an actor restart is applied once. Each new candidate is also written once to `candidates/<id>.json`.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from reward_search import io
from reward_search.candidates.candidate import CandidateStore, RewardCandidate
from reward_search.candidates.records import LeaderboardEntry, rank_entries
from reward_search.candidates.status import STATUSES, check_status
from reward_search.search.eventlog import EventLog

LEADERBOARD_FILE = "leaderboard.parquet"
EVENTS_FILE = "leaderboard.events.jsonl"
APPLIED_FILE = "leaderboard.applied.json"  # event ids already in the Parquet snapshot (recent ones)
ACTOR_NAME = "leaderboard"
NAMESPACE_PREFIX = "reward-search-"
COMPACT_EVERY = 256  # events between Parquet snapshots (at least; see `_record`)
APPLIED_KEEP = 20_000
LATENCY_KEEP = 4096
# Nested fields stored as JSON text in Parquet (one schema whatever they hold).
_JSON_FIELDS = ("parents", "reasons", "dev_curve", "curve_summary", "probe")


def wilson_interval(correct: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (statsmodels; fast, for the live table; the report bootstraps)."""
    if n <= 0:
        return (0.0, 0.0)
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(correct, n, alpha=0.05, method="wilson")
    return (float(low), float(high))


def namespace_for(run_id: str) -> str:
    """The Ray namespace of a run (by its run id): its actors are found by name there."""
    return f"{NAMESPACE_PREFIX}{run_id}"


class LeaderboardCore:
    """All entries of one run, keyed by candidate id; every change is logged to the run directory before returning."""

    def __init__(self, run_dir: str, compact_every: int = COMPACT_EVERY, metric: str = "accuracy") -> None:
        self.run_dir = Path(run_dir)
        self.metric = metric  # the run's selection.metric: the ranking rule's first key
        self.store = CandidateStore(self.run_dir / "candidates")
        self.entries: dict[str, LeaderboardEntry] = {}
        self.compact_every = compact_every
        self.log = EventLog(self.run_dir / EVENTS_FILE)
        self.applied: dict[str, None] = {}  # event ids seen, oldest first (bounded by APPLIED_KEEP)
        self.pending_events = 0  # events logged since the last snapshot
        self.latencies: deque[float] = deque(maxlen=LATENCY_KEEP)  # seconds per change, newest last
        self._load()

    # ----------------------------------------------------------------------------------------- persistence

    def _load(self) -> None:
        self.entries.update(read_snapshot(self.run_dir / LEADERBOARD_FILE))
        applied = self.run_dir / APPLIED_FILE
        if applied.is_file():
            self.applied = dict.fromkeys(json.loads(applied.read_text()))
        for event in self.log.read():
            self._apply(event)
            self.pending_events += 1

    def compact(self) -> int:
        """Write the whole board to Parquet and empty the event log; returns the number of entries written."""
        count = write_snapshot(self.run_dir, self.entries.values(), list(self.applied))
        self.log.reset()
        self.pending_events = 0
        return count

    def _record(self, event: dict[str, Any]) -> bool:
        """Apply a new event and log it; False (and nothing changes) when its id was applied before."""
        started = time.perf_counter()
        if event["id"] in self.applied:
            return False
        self._apply(event)
        self.log.append(event)
        self.pending_events += 1
        # Snapshot after max(compact_every, entries / 2) events: a snapshot costs O(entries), so its amortised
        # cost per event stays constant however large the board grows.
        due = self.pending_events >= max(self.compact_every, len(self.entries) / 2)
        if due or not (self.run_dir / LEADERBOARD_FILE).is_file():
            self.compact()
        self.latencies.append(time.perf_counter() - started)
        return True

    def _apply(self, event: dict[str, Any]) -> None:
        """One event's change to the in-memory board (also used to replay the log)."""
        self.applied[event["id"]] = None
        if len(self.applied) > APPLIED_KEEP:
            self.applied.pop(next(iter(self.applied)))
        apply_event(self.entries, event)

    # ----------------------------------------------------------------------------------------- changes

    def add_candidate(
        self,
        candidate: dict[str, Any],
        round: int,
        status: str,
        reasons: list[str],
        conditioned_on: int | None = None,
    ) -> bool:
        """Record a proposed candidate (validated or rejected). False when its id is already on the board.

        `conditioned_on`: how many finished results the feedback of its proposal included.
        """
        cand = RewardCandidate.from_dict(candidate)
        self.store.save(cand)
        if cand.id in self.entries:
            return False
        entry = LeaderboardEntry(
            candidate_id=cand.id,
            name=cand.name,
            round=round,
            proposer=cand.origin.proposer,
            status=check_status(status).value,
            source=cand.source,
            description=cand.description,
            parents=list(cand.origin.parents),
            reasons=list(reasons),
            probe=cand.probe,
            conditioned_on=conditioned_on,
            updated=time.time(),
        )
        return self._record({"id": f"add:{cand.id}", "op": "add", "cid": cand.id, "data": entry.to_dict()})

    def update(self, candidate_id: str, event_id: str | None = None, **fields: Any) -> LeaderboardEntry:
        """Change fields of an entry (status, metrics, ...); the status must be a known one.

        `event_id` makes the change idempotent: a retried call with the same id changes nothing.
        """
        entry = self.entries[candidate_id]
        status = fields.get("status")
        changes = dict(fields)
        if status is not None:
            status = changes["status"] = check_status(status).value  # a plain string on the board and on disk
        for key in fields:
            if not hasattr(entry, key):
                raise AttributeError(f"LeaderboardEntry has no field {key!r}")
        correct, n = changes.get("correct", entry.correct), changes.get("n", entry.n)
        if correct is not None and n:
            changes["ci_low"], changes["ci_high"] = wilson_interval(correct, n)
        changes["updated"] = time.time()
        event = {"id": event_id or f"update:{uuid.uuid4().hex}", "op": "update", "cid": candidate_id, "data": changes}
        recorded = self._record(event)
        if recorded and status is not None and self.store.path(candidate_id).exists():  # a lost record: board only
            self.store.set_status(candidate_id, status, "; ".join(entry.reasons[-1:]))
        return entry

    def append_dev_point(self, candidate_id: str, accuracy: float, event_id: str | None = None) -> bool:
        """Add an intermediate dev accuracy to the entry's curve; with `event_id`, at most once."""
        if candidate_id not in self.entries:
            raise KeyError(candidate_id)
        data = {"accuracy": float(accuracy), "updated": time.time()}
        return self._record(
            {"id": event_id or f"dev:{uuid.uuid4().hex}", "op": "dev", "cid": candidate_id, "data": data}
        )

    def latency(self) -> dict[str, float]:
        """p50/p99/max seconds of recent changes (logging included), measured inside the actor."""
        if not self.latencies:
            return {"count": 0, "p50": 0.0, "p99": 0.0, "max": 0.0}
        ordered = sorted(self.latencies)

        def at(q: float) -> float:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

        return {"count": len(ordered), "p50": at(0.5), "p99": at(0.99), "max": ordered[-1]}

    # ----------------------------------------------------------------------------------------- views

    def all(self) -> list[LeaderboardEntry]:
        return sorted(self.entries.values(), key=lambda e: (e.round, e.updated, e.candidate_id))

    def get(self, candidate_id: str) -> LeaderboardEntry | None:
        return self.entries.get(candidate_id)

    def ranked(self) -> list[LeaderboardEntry]:
        """Screened candidates, best first under the run's selection metric (the one rule, `rank_entries`)."""
        return rank_entries(self.entries.values(), self.metric)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for entry in self.entries.values():
            counts[entry.status] += 1
        return counts

    def where(self) -> str:
        """The run directory this board persists to (for `status --address`)."""
        return str(self.run_dir)

    def summary(self) -> dict[str, Any]:
        """Progress for `status` and the dashboard: counts, best so far, rounds seen, the ranking's metric."""
        ranked = self.ranked()
        best = ranked[0] if ranked else None
        return {
            "metric": self.metric,
            "candidates": len(self.entries),
            "counts": self.counts(),
            "rounds": sorted({e.round for e in self.entries.values()}),
            "best": None
            if best is None
            else {"name": best.name, "round": best.round, "accuracy": best.accuracy, "gold_logprob": best.gold_logprob},
            "gpu_hours": sum(e.gpu_hours or 0.0 for e in self.entries.values()),
        }


def apply_event(entries: dict[str, LeaderboardEntry], event: dict[str, Any]) -> None:
    """One logged event's change to a board (entries by candidate id); KeyError for a candidate it does not hold."""
    cid, data = event["cid"], event["data"]
    if event["op"] == "add":
        entries.setdefault(cid, LeaderboardEntry.from_dict(data))
    elif event["op"] == "update":
        entry = entries[cid]
        for key, value in data.items():
            setattr(entry, key, value)
    elif event["op"] == "dev":
        entry = entries[cid]
        entry.dev_curve = [*entry.dev_curve, float(data["accuracy"])]
        entry.updated = float(data["updated"])
    else:
        raise ValueError(f"unknown leaderboard event {event['op']!r}")


def read_snapshot(path: Path) -> dict[str, LeaderboardEntry]:
    """The entries of a Parquet snapshot by candidate id ({} when there is none); a file that does not read raises
    (pyarrow's error: `search/damage.py` reports it and rebuilds the board without it)."""
    if not path.is_file():
        return {}
    import pyarrow.parquet as pq

    entries = {}
    for row in pq.read_table(path).to_pylist():
        for name in _JSON_FIELDS:
            if isinstance(row.get(name), str):
                row[name] = json.loads(row[name])
        entry = LeaderboardEntry.from_dict(row)
        entries[entry.candidate_id] = entry
    return entries


def write_snapshot(run_dir: Path, entries: Iterable[LeaderboardEntry], applied: list[str]) -> int:
    """Write `entries` as the Parquet snapshot and `applied` (event ids, oldest first) beside it, each atomically;
    the event log is left to the caller. Returns the number of entries written."""
    names = [f.name for f in dataclasses.fields(LeaderboardEntry)]
    rows = []
    for entry in entries:
        row = {name: getattr(entry, name) for name in names}  # shallow: nested fields become JSON text below
        for name in _JSON_FIELDS:
            row[name] = json.dumps(row[name], default=str)
        rows.append(row)
    io.write_parquet(Path(run_dir) / LEADERBOARD_FILE, rows)
    io.write_json(Path(run_dir) / APPLIED_FILE, applied[-APPLIED_KEEP:])
    return len(rows)


def load_entries(run_dir: str | Path) -> list[LeaderboardEntry]:
    """The entries of a run directory, read from disk (no Ray needed)."""
    return LeaderboardCore(str(run_dir)).all()


def leaderboard_actor(run_dir: str | Path, run_id: str, metric: str = "accuracy") -> Any:
    """The run's named leaderboard actor, created if needed; Ray restarts it (reloading from disk) if it dies.

    Named in the namespace of the run id (not the run name), so runs that share a name never share an actor.
    `metric` is the run's `selection.metric`, the first key of the ranking its views and summary use.
    """
    import ray

    remote = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(LeaderboardCore)
    return remote.options(name=ACTOR_NAME, namespace=namespace_for(run_id), get_if_exists=True, lifetime=None).remote(
        str(Path(run_dir).resolve()), metric=metric
    )
