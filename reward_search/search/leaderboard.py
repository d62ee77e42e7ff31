"""The leaderboard: every candidate's status and result, persisted after each change, ranked views.

`LeaderboardCore` is plain Python (tested directly); `leaderboard_actor` wraps it as a named Ray actor in the run's
namespace, restarted by Ray if it dies. Each change rewrites `leaderboard.parquet` atomically and each new candidate
is written once to `candidates/<id>.json`, so a killed actor or driver reloads everything from the run directory.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from reward_search import io
from reward_search.candidates.candidate import CandidateStore, RewardCandidate
from reward_search.search.records import ENTRY_STATUSES, LeaderboardEntry, rank_entries

LEADERBOARD_FILE = "leaderboard.parquet"
ACTOR_NAME = "leaderboard"
FINISHED = ("done", "failed", "crashed", "stopped")
# Nested fields stored as JSON text in Parquet (one schema whatever they hold).
_JSON_FIELDS = ("parents", "reasons", "dev_curve", "curve_summary", "probe")


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (fast, for the live table; the report bootstraps)."""
    if n <= 0:
        return (0.0, 0.0)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def namespace_for(run_name: str) -> str:
    """The Ray namespace of a run: its actors are found by name there."""
    return f"reward-search-{run_name}"


class LeaderboardCore:
    """All entries of one run, keyed by candidate id, mirrored to the run directory after each change."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = Path(run_dir)
        self.store = CandidateStore(self.run_dir / "candidates")
        self.entries: dict[str, LeaderboardEntry] = {}
        self._load()

    # ----------------------------------------------------------------------------------------- persistence

    def _load(self) -> None:
        path = self.run_dir / LEADERBOARD_FILE
        if not path.is_file():
            return
        import pyarrow.parquet as pq

        for row in pq.read_table(path).to_pylist():
            for name in _JSON_FIELDS:
                if isinstance(row.get(name), str):
                    row[name] = json.loads(row[name])
            entry = LeaderboardEntry.from_dict(row)
            self.entries[entry.candidate_id] = entry

    def _save(self) -> None:
        rows = []
        for entry in self.entries.values():
            row = entry.to_dict()
            for name in _JSON_FIELDS:
                row[name] = json.dumps(row[name], default=str)
            rows.append(row)
        io.write_parquet(self.run_dir / LEADERBOARD_FILE, rows)

    # ----------------------------------------------------------------------------------------- changes

    def add_candidate(self, candidate: dict[str, Any], round: int, status: str, reasons: list[str]) -> bool:
        """Record a proposed candidate (validated or rejected). False when its id is already on the board."""
        cand = RewardCandidate.from_dict(candidate)
        self.store.save(cand)
        if cand.id in self.entries:
            return False
        self.entries[cand.id] = LeaderboardEntry(
            candidate_id=cand.id,
            name=cand.name,
            round=round,
            proposer=cand.origin.proposer,
            status=status,
            source=cand.source,
            description=cand.description,
            parents=list(cand.origin.parents),
            reasons=list(reasons),
            probe=cand.probe,
            updated=time.time(),
        )
        self._save()
        return True

    def update(self, candidate_id: str, **fields: Any) -> LeaderboardEntry:
        """Change fields of an entry (status, metrics, ...); the status must be a known one."""
        entry = self.entries[candidate_id]
        status = fields.get("status")
        if status is not None and status not in ENTRY_STATUSES:
            raise ValueError(f"unknown status {status!r}")
        for key, value in fields.items():
            if not hasattr(entry, key):
                raise AttributeError(f"LeaderboardEntry has no field {key!r}")
            setattr(entry, key, value)
        if entry.correct is not None and entry.n:
            entry.ci_low, entry.ci_high = wilson_interval(entry.correct, entry.n)
        entry.updated = time.time()
        if status is not None:
            self.store.set_status(candidate_id, status, "; ".join(entry.reasons[-1:]))
        self._save()
        return entry

    def append_dev_point(self, candidate_id: str, accuracy: float) -> None:
        entry = self.entries[candidate_id]
        entry.dev_curve = [*entry.dev_curve, float(accuracy)]
        self._save()

    # ----------------------------------------------------------------------------------------- views

    def all(self) -> list[LeaderboardEntry]:
        return sorted(self.entries.values(), key=lambda e: (e.round, e.updated, e.candidate_id))

    def get(self, candidate_id: str) -> LeaderboardEntry | None:
        return self.entries.get(candidate_id)

    def ranked(self) -> list[LeaderboardEntry]:
        """Screened candidates, best selection accuracy first (see `rank_entries`)."""
        return rank_entries(self.entries.values())

    def top_k(self, k: int) -> list[LeaderboardEntry]:
        return self.ranked()[:k]

    def by_round(self, round: int) -> list[LeaderboardEntry]:
        return [e for e in self.all() if e.round == round]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(ENTRY_STATUSES, 0)
        for entry in self.entries.values():
            counts[entry.status] += 1
        return counts

    def summary(self) -> dict[str, Any]:
        """Progress for `status` and the dashboard: counts, best so far, rounds seen."""
        ranked = self.ranked()
        best = ranked[0] if ranked else None
        return {
            "candidates": len(self.entries),
            "counts": self.counts(),
            "rounds": sorted({e.round for e in self.entries.values()}),
            "best": None if best is None else {"name": best.name, "round": best.round, "accuracy": best.accuracy},
            "gpu_hours": sum(e.gpu_hours or 0.0 for e in self.entries.values()),
        }


def load_entries(run_dir: str | Path) -> list[LeaderboardEntry]:
    """The entries of a run directory, read from disk (no Ray needed)."""
    return LeaderboardCore(str(run_dir)).all()


def leaderboard_actor(run_dir: str | Path, run_name: str) -> Any:
    """The run's named leaderboard actor, created if needed; Ray restarts it (reloading from disk) if it dies."""
    import ray

    remote = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(LeaderboardCore)
    return remote.options(name=ACTOR_NAME, namespace=namespace_for(run_name), get_if_exists=True, lifetime=None).remote(
        str(Path(run_dir).resolve())
    )
