"""Everything a report reads from a run directory, loaded once; missing pieces are listed, not fatal.

A run directory is enough to rebuild its report: the config, manifest and driver state, the leaderboard, each
trial's curves and per-question records, and `finalize.json` when the finalize phase has run. Paths written by
the run (absolute `trial_dir`s) are resolved inside this run directory first, so a moved run still reports.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from reward_search.candidates.records import LeaderboardEntry, rank_entries
from reward_search.config import ExperimentConfig, load_config
from reward_search.errors import UserError
from reward_search.search.damage import check_run, driver_alive
from reward_search.search.leaderboard import load_entries
from reward_search.search.untrained import UNTRAINED

FINALIZE_FILE = "finalize.json"
LEADERBOARD_FILE = "leaderboard.parquet"
DAMAGE_PREFIX = "damage: "  # a `missing` line that names damage to the run directory


@dataclass
class FinalJobView:
    """One finalize job as written to `finalize.json` (name, kind, members, seed, result)."""

    name: str
    kind: str
    members: list[str]
    member_ids: list[str]
    steps: int | None
    seed: int | None
    result: dict[str, Any]

    @property
    def done(self) -> bool:
        return self.result.get("status") == "done"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FinalJobView:
        return cls(
            name=str(data.get("name", "")),
            kind=str(data.get("kind", "")),
            members=list(data.get("members") or []),
            member_ids=list(data.get("member_ids") or []),
            steps=data.get("steps"),
            seed=data.get("seed"),
            result=dict(data.get("result") or {}),
        )


@dataclass
class RunData:
    """A run directory's contents for reporting; `missing` names what could not be read, one line each."""

    run_dir: Path
    config: ExperimentConfig | None
    manifest: dict[str, Any]
    driver_state: dict[str, Any]
    entries: list[LeaderboardEntry]
    finalize: dict[str, Any] | None
    missing: list[str] = field(default_factory=list)

    @property
    def jobs(self) -> list[FinalJobView]:
        return [FinalJobView.from_dict(j) for j in (self.finalize or {}).get("jobs", [])]

    @property
    def untrained(self) -> FinalJobView | None:
        """The `untrained` row (the base model without training), when finalize evaluated it."""
        return next((j for j in self.jobs if j.kind == UNTRAINED), None)

    @property
    def selection_split(self) -> str:
        if self.finalize and self.finalize.get("selection_split"):
            return str(self.finalize["selection_split"])
        return self.config.training.selection_split if self.config is not None else "dev"

    @property
    def report_every(self) -> int | None:
        return self.config.training.report_every if self.config is not None else None

    @property
    def selection_metric(self) -> str:
        """The ranking's primary key (`selection.metric`): accuracy or gold_logprob."""
        return self.config.selection.metric if self.config is not None else "accuracy"

    def ranked(self) -> list[LeaderboardEntry]:
        """Screened candidates with a selection accuracy, best first (the finalize phase's order)."""
        return rank_entries(self.entries, self.selection_metric)

    def trial_path(self, key: str | None, recorded: str | None = None) -> Path | None:
        """The folder of a trial: `trials/<key>` in this run directory, else the recorded path if it exists."""
        if key:
            local = self.run_dir / "trials" / key
            if local.is_dir():
                return local
        if recorded and Path(recorded).is_dir():
            return Path(recorded)
        return None

    def trial_table(self, key: str | None, name: str, recorded: str | None = None) -> pd.DataFrame | None:
        """A trial's Parquet table (`curves`, `selection` or `test`), or None when it was not written."""
        folder = self.trial_path(key, recorded)
        path = folder / f"{name}.parquet" if folder is not None else None
        if path is None or not path.is_file():
            return None
        return pd.read_parquet(path)

    def job_records(self, job: FinalJobView, split: str = "test") -> pd.DataFrame | None:
        """A finalize job's per-question records on `split` ("test" or "selection").

        A run that ranks on test evaluates test once, as its selection split: its test records are `selection`.
        A control evaluated on test only (`finalize.controls_on_dev: false`) has no records on the run's selection
        split: None, so that nothing pairs its test questions with another job's dev questions.
        """
        key, recorded = job.result.get("trial_key"), job.result.get("trial_dir")
        if job.kind == UNTRAINED:  # no trial: `untrained/<fingerprint>/` in this run directory (moved runs too)
            local = self.run_dir / UNTRAINED / str(job.result.get("fingerprint"))
            recorded = str(local) if local.is_dir() else recorded
        selected_on = job.result.get("selection_split") or self.selection_split
        if split == "selection" and selected_on != self.selection_split:
            return None
        frame = self.trial_table(key, split, recorded)
        if frame is None and split == "test" and selected_on == "test":
            frame = self.trial_table(key, "selection", recorded)
        return frame

    @property
    def mcnemar_mode(self) -> str:
        """The McNemar family and method the run's config names (`analysis.mcnemar`)."""
        if self.finalize and self.finalize.get("mcnemar"):
            return str(self.finalize["mcnemar"])
        return self.config.analysis.mcnemar if self.config is not None else "exact"


def _read_json(path: Path, missing: list[str]) -> dict[str, Any]:
    if not path.is_file():
        missing.append(f"{path.name} is missing")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        missing.append(f"{path.name} is not valid JSON ({exc.msg} at line {exc.lineno})")
        return {}
    return data if isinstance(data, dict) else {}


def load_run(run_dir: str | Path) -> RunData:
    """Load a run directory; raises UserError when it is not one (no folder, or no leaderboard)."""
    root = Path(run_dir)
    if not root.is_dir():
        raise UserError(f"{root}: no such run directory")
    if not (root / LEADERBOARD_FILE).is_file():
        raise UserError(f"{root}: not a run directory (no {LEADERBOARD_FILE})")
    missing: list[str] = []
    config: ExperimentConfig | None = None
    if (root / "config.yaml").is_file():
        config = load_config(root / "config.yaml")
    else:
        missing.append("config.yaml is missing")
    entries = _entries(root, config, missing)
    manifest = _read_json(root / "manifest.json", missing)
    driver_state = _read_json(root / "driver_state.json", missing)
    finalize: dict[str, Any] | None = None
    if (root / FINALIZE_FILE).is_file():
        finalize = _read_json(root / FINALIZE_FILE, missing) or None
    else:
        missing.append(f"{FINALIZE_FILE} is missing: the finalize phase has not run (or is disabled)")
    return RunData(root, config, manifest, driver_state, entries, finalize, missing)


def _entries(root: Path, config: ExperimentConfig | None, missing: list[str]) -> list[LeaderboardEntry]:
    """The board, read through the damage checks (`search/damage.py`) when the config is there: each problem joins
    `missing` as a `damage:` line (the report shows it; `report` warns with it), the board is read around it."""
    if config is None:
        try:
            return load_entries(root)
        except (OSError, ValueError) as exc:
            raise UserError(f"{root / LEADERBOARD_FILE}: cannot be read ({exc})") from None
    damage = check_run(root, config, live=driver_alive(root))
    missing.extend(f"{DAMAGE_PREFIX}{problem.line()}" for problem in damage.problems)
    return damage.board()


def dev_points(entry: LeaderboardEntry, report_every: int | None, steps: int | None = None) -> list[tuple[int, float]]:
    """(step, intermediate dev accuracy) pairs of a screened candidate: reports come every `report_every` steps.

    The last report may come at the final step when it is not a multiple of `report_every`.
    """
    if not entry.dev_curve or not report_every:
        return []
    points = [((i + 1) * report_every, float(v)) for i, v in enumerate(entry.dev_curve)]
    if steps is not None:
        points = [(min(step, steps), value) for step, value in points]
    return points


def finalize_dev_points(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Intermediate dev accuracies of finalize jobs, read from Tune's per-trial `result.json` (JSON lines).

    Later finalize experiments win for the same job name (a resumed finalize re-reports its jobs).
    """
    points: dict[str, list[tuple[int, float]]] = {}
    for experiment in sorted((run_dir / "tune").glob("finalize-*")):
        for result in sorted(experiment.glob("*/result.json")):
            found: list[tuple[int, float]] = []
            name = None
            for line in result.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    report = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a killed trial
                name = ((report.get("config") or {}).get("job") or {}).get("job_name", name)
                if not report.get("final") and report.get("dev_accuracy") is not None and "step" in report:
                    found.append((int(report["step"]), float(report["dev_accuracy"])))
            if name is not None and found:
                points[name] = found
    return points
