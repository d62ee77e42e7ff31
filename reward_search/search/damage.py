"""Damage in a run directory, found (`check_run`) and rebuilt (`repair`): `reward-search doctor RUN_DIR [--fix]`;
`status` and `report` check first and warn, `resume` checks and repairs first.

What is checked, and what a repair writes (atomically, through `reward_search.io`):

- `leaderboard.parquet` (the board's snapshot) does not read: the board is rebuilt from the candidate records
  (`candidates/<id>.json` with their status logs), the event log and the screening trials' `result.json`.
- an event-log line that does not parse, or a lost event: a candidate on record but not on the board is added from
  its record; a candidate whose screening trial's `result.json` says more than the board (`screening` on the board,
  `done` in the trial) takes the trial's result.
- `candidates/<id>.json` does not parse: rewritten from the candidate's leaderboard entry when the entry's source
  and name hash to the id (the id is that content hash, so the reward is the one validated; its probe report comes
  from the entry, the link to an LLM transcript is lost); the damaged file is kept as `<id>.json.corrupt`. Nothing
  is re-validated. A record not on the board either is reported as lost.
- a `done` entry whose `trials/<key>/result.json` is missing: set back to `accepted`, so `resume` screens that one
  candidate again (from its last checkpoint when the trial folder kept one).

The dev curves (intermediate dev accuracies) live only in the events and the snapshot: a board rebuilt without its
snapshot lacks the curves of the candidates the lost snapshot held. While a driver runs, a trial's result is
written before its report reaches the board, so the lost-event checks are skipped (`live=True`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reward_search.candidates.candidate import CandidateStore, Origin, RewardCandidate
from reward_search.candidates.records import LeaderboardEntry
from reward_search.candidates.status import FINISHED, WAITING, Status
from reward_search.config import ExperimentConfig, to_plain
from reward_search.search.eventlog import EventLog
from reward_search.search.leaderboard import (
    APPLIED_FILE,
    EVENTS_FILE,
    LEADERBOARD_FILE,
    apply_event,
    read_snapshot,
    wilson_interval,
    write_snapshot,
)

DAMAGED_EXIT = 3  # `doctor`: damage found (or, with --fix, left that could not be rebuilt)
# Problem kinds
SNAPSHOT, EVENTS, LOST_EVENT, RECORD, RESULT = "snapshot", "events", "lost-event", "record", "result"
_BOARD_KINDS = (SNAPSHOT, EVENTS, LOST_EVENT, RESULT)  # a repair rewrites the snapshot
_RESET_FIELDS = (
    "accuracy", "f1", "extraction_rate", "correct", "n", "ci_low", "ci_high", "gold_logprob", "steps",
    "train_seconds", "gpu_hours", "trial_key", "trial_dir",
)  # fmt: skip


@dataclass(frozen=True)
class Problem:
    """One thing wrong: its kind, the file at fault (relative to the run directory), what is wrong, what a repair
    does (empty when nothing can), and the candidate it concerns."""

    kind: str
    path: str
    detail: str
    fix: str = ""
    cid: str | None = None

    def line(self) -> str:
        return f"{self.path}: {self.detail}" + (f"; {self.fix}" if self.fix else "; cannot be rebuilt")


@dataclass
class DamageReport:
    """What `check_run` found, with the board as it reads once the damage is worked around (in memory)."""

    run_dir: Path
    problems: list[Problem] = field(default_factory=list)
    entries: dict[str, LeaderboardEntry] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)  # event ids the rebuilt snapshot has applied

    @property
    def clean(self) -> bool:
        return not self.problems

    def board(self) -> list[LeaderboardEntry]:
        """The entries in the board's own order (round, last change, id)."""
        return sorted(self.entries.values(), key=lambda e: (e.round, e.updated, e.candidate_id))


def _first_line(exc: BaseException, limit: int = 120) -> str:
    text = str(exc).strip().splitlines()
    line = f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _read_events(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    """The log's events and the numbers of lines that do not parse (a torn last line is not damage)."""
    if not path.is_file():
        return [], []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    events, bad = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
            if not isinstance(event, dict) or not {"id", "op", "cid", "data"} <= event.keys():
                raise ValueError("not an event")
            events.append(event)
        except ValueError:
            if number < len(lines):
                bad.append(number)
    return events, bad


def _read_records(run_dir: Path, problems: list[Problem]) -> dict[str, RewardCandidate]:
    """Every candidate record that reads (its latest status applied); one problem per record that does not."""
    store = CandidateStore(run_dir / "candidates")
    records = {}
    for cid in store.ids():
        try:
            records[cid] = store.load(cid)
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            detail = f"unreadable candidate record ({_first_line(exc)})"
            problems.append(Problem(RECORD, f"candidates/{cid}.json", detail, cid=cid))
    return records


def entry_from_record(record: RewardCandidate, path: Path) -> LeaderboardEntry:
    """A board entry for a candidate known only from its record (its proposal's feedback count is unknown)."""
    return LeaderboardEntry(
        candidate_id=record.id,
        name=record.name,
        round=record.origin.round,
        proposer=record.origin.proposer,
        status=record.status,
        source=record.source,
        description=record.description,
        parents=list(record.origin.parents),
        reasons=list(record.reasons),
        probe=record.probe,
        updated=path.stat().st_mtime if path.exists() else 0.0,
    )


def screening_results(run_dir: Path, config: ExperimentConfig) -> dict[str, Path]:
    """The `result.json` of each candidate's screening trial, by candidate id: a trial folder whose `trial.json`
    names that one candidate with the run's own training config and seed (finalize's jobs differ in one of them)."""
    training = json.loads(json.dumps(to_plain(config.training), default=str))
    found = {}
    for marker in sorted((run_dir / "trials").glob("*/trial.json")):
        try:
            identity = json.loads(marker.read_text(encoding="utf-8"))["identity"]
            (candidate,) = identity["rewards"]["candidates"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a one-candidate trial (an ensemble, the baseline) or no marker to read
        if identity.get("training") == training and identity.get("seed") == config.run.seed:
            found[candidate["id"]] = marker.with_name("result.json")
    return found


def _result_fields(path: Path, gpus_per_trial: float) -> dict[str, Any] | None:
    """The board fields the trial's final report would have set; None when `result.json` does not read."""
    from reward_search.search.searcher import fields_from_result
    from reward_search.training.trial_cache import TrialResult, final_report

    try:
        result = TrialResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError, TypeError):
        return None
    fields = fields_from_result(final_report(result), False, gpus_per_trial)
    fields["status"] = str(fields["status"])
    if fields.get("correct") is not None and fields.get("n"):
        fields["ci_low"], fields["ci_high"] = wilson_interval(fields["correct"], fields["n"])
    fields["updated"] = path.stat().st_mtime
    return fields


def _read_applied(run_dir: Path) -> list[str]:
    try:
        applied = json.loads((run_dir / APPLIED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [str(a) for a in applied] if isinstance(applied, list) else []


def _read_board(report: DamageReport, records: dict[str, RewardCandidate]) -> set[str]:
    """Snapshot, then the event log, into `report.entries`, working around what does not read; the ids of the
    entries seeded from their records (when the snapshot is lost, so that the log's updates apply to them)."""
    run_dir, problems = report.run_dir, report.problems
    seeded: set[str] = set()
    try:
        report.entries = read_snapshot(run_dir / LEADERBOARD_FILE)
    except Exception as exc:  # pyarrow's ArrowInvalid, OSError, a row that is not an entry: all one thing here
        fix = "read instead from the event log, the candidate records and the trial results (a repair writes it back)"
        problems.append(Problem(SNAPSHOT, LEADERBOARD_FILE, f"does not read ({_first_line(exc)})", fix))
        for cid, record in records.items():
            report.entries[cid] = entry_from_record(record, run_dir / "candidates" / f"{cid}.json")
            seeded.add(cid)
    report.applied = _read_applied(run_dir)
    events, bad = _read_events(run_dir / EVENTS_FILE)
    for number in bad:
        detail = f"line {number} is not a leaderboard event (the change it held is lost)"
        problems.append(
            Problem(EVENTS, EVENTS_FILE, detail, "its change is recovered from the candidate records and trial results")
        )
    for event in events:
        try:
            apply_event(report.entries, event)
        except (KeyError, ValueError, TypeError, AttributeError):
            continue  # a change to a candidate whose add was lost: its record and trial result stand in for it
        report.applied.append(str(event["id"]))
    return seeded


def _recover_adds(report: DamageReport, records: dict[str, RewardCandidate]) -> None:
    """Candidates on record but not on the board (their add event was lost) join it from their records."""
    for cid, record in records.items():
        if cid not in report.entries:
            path = report.run_dir / "candidates" / f"{cid}.json"
            report.entries[cid] = entry_from_record(record, path)
            detail = f"{record.name} is on record but not on the leaderboard (its event was lost)"
            report.problems.append(
                Problem(
                    LOST_EVENT,
                    f"candidates/{cid}.json",
                    detail,
                    "taken from its record (a repair writes it to the board)",
                    cid,
                )
            )


def _recover_results(report: DamageReport, config: ExperimentConfig, seeded: set[str]) -> None:
    """An entry still waiting (or finished with no trial on the board) whose screening trial has a result takes it."""
    results = screening_results(report.run_dir, config)
    for cid, path in results.items():
        entry = report.entries.get(cid)
        if entry is None or not path.is_file():
            continue
        if entry.status not in WAITING and not (entry.status in FINISHED and entry.trial_key is None):
            continue
        fields = _result_fields(path, config.search.gpus_per_trial)
        if fields is None:
            continue
        was = entry.status
        for key, value in fields.items():
            setattr(entry, key, value)
        if cid not in seeded:
            where = str(path.relative_to(report.run_dir))
            detail = f"says {fields['status']}, the leaderboard says {was} for {entry.name} (its event was lost)"
            report.problems.append(
                Problem(LOST_EVENT, where, detail, "the trial's result is taken (a repair writes it to the board)", cid)
            )


def _missing_results(report: DamageReport) -> None:
    """A `done` entry whose trial has no `result.json`: named; a repair screens the candidate again."""
    for entry in report.entries.values():
        if entry.status != Status.DONE or not entry.trial_key:
            continue
        path = report.run_dir / "trials" / entry.trial_key / "result.json"
        if not path.is_file():
            detail = f"missing, yet {entry.name} is done on the leaderboard"
            fix = "a repair sets it back to accepted, and `reward-search resume` screens it again"
            report.problems.append(
                Problem(RESULT, f"trials/{entry.trial_key}/result.json", detail, fix, entry.candidate_id)
            )


def _record_from_entry(entry: LeaderboardEntry) -> RewardCandidate | None:
    """The record validation wrote, as the entry holds it (None when the entry cannot make one)."""
    rejected = entry.status in (Status.REJECTED, Status.SKIPPED)  # its verdict and reasons are the record's own
    try:
        return RewardCandidate(
            name=entry.name,
            source=entry.source,
            description=entry.description,
            origin=Origin(proposer=entry.proposer, round=entry.round, parents=tuple(entry.parents)),
            status=entry.status if rejected else Status.ACCEPTED,
            reasons=tuple(entry.reasons) if rejected else (),
            probe=entry.probe,
        )
    except (ValueError, TypeError):
        return None


def _record_fixes(report: DamageReport) -> None:
    """What a repair does about each unreadable record: rewrite it from its entry when the source hashes to it."""
    for index, problem in enumerate(report.problems):
        if problem.kind != RECORD:
            continue
        entry = report.entries.get(problem.cid or "")
        rebuilt = None if entry is None else _record_from_entry(entry)
        if rebuilt is not None and rebuilt.id == problem.cid:
            fix = (
                "a repair rewrites it from its leaderboard entry (its source hashes to the id; nothing is re-validated)"
            )
            report.problems[index] = replace(problem, fix=fix)
        else:
            why = "not on the leaderboard either" if entry is None else "its entry's source does not hash to the id"
            report.problems[index] = replace(problem, detail=f"{problem.detail}; lost: {why}")


def check_run(run_dir: str | Path, config: ExperimentConfig, live: bool = False) -> DamageReport:
    """Every check on a run directory (reads only); `live`: a driver holds the lease, so results in flight are
    not lost events."""
    report = DamageReport(Path(run_dir))
    records = _read_records(report.run_dir, report.problems)
    seeded = _read_board(report, records)
    if not live:
        _recover_adds(report, records)
        _recover_results(report, config, seeded)
    _missing_results(report)
    _record_fixes(report)
    return report


def _reset(entry: LeaderboardEntry) -> None:
    """Back to `accepted`, with no trial: the next resume screens it again."""
    for name in _RESET_FIELDS:
        setattr(entry, name, None)
    entry.status, entry.dev_curve, entry.curve_summary = Status.ACCEPTED.value, [], {}
    entry.updated = time.time()


def repair(report: DamageReport) -> list[str]:
    """Rebuild what `report` found that can be rebuilt; one line per change. The caller holds the run directory's
    lease (no driver may write the board meanwhile)."""
    run_dir, changes = report.run_dir, []
    store = CandidateStore(run_dir / "candidates")
    for problem in report.problems:
        if problem.kind == RECORD and problem.fix and problem.cid:
            path = store.path(problem.cid)
            os.replace(path, path.with_name(path.name + ".corrupt"))
            rebuilt = _record_from_entry(report.entries[problem.cid])
            assert rebuilt is not None  # `_record_fixes` gave a fix only where the entry makes the record
            store.save(rebuilt)
            changes.append(
                f"{problem.path}: rewritten from its leaderboard entry (the damaged file: {path.name}.corrupt)"
            )
        elif problem.kind == RESULT and problem.cid:
            entry = report.entries[problem.cid]
            _reset(entry)
            if store.path(problem.cid).exists():
                store.set_status(problem.cid, Status.ACCEPTED, f"{problem.path} was missing: screened again")
            changes.append(f"{entry.name}: back to accepted ({problem.path} is missing); resume screens it again")
    if any(p.kind in _BOARD_KINDS for p in report.problems):
        count = write_snapshot(run_dir, report.board(), report.applied)
        EventLog(run_dir / EVENTS_FILE).reset()
        changes.append(f"{LEADERBOARD_FILE}: rewritten with {count} candidates ({EVENTS_FILE} folded into it)")
    return changes


def driver_alive(run_dir: str | Path) -> bool:
    """Whether a live driver (or finalize) holds the run directory's lease."""
    from reward_search.search.lease import DEFAULT_TTL, RunLease

    holder = RunLease(Path(run_dir), "").read()
    return holder is not None and holder.alive(DEFAULT_TTL)
