"""Where a run's finalize phase stands, in one line for `status` and `doctor`, from the run directory alone.

Finalize writes `finalize.json` once, at its end; until then its trials are Tune experiments under
`tune/finalize-<phase>-<time>/`, each trial folder with Tune's `result.json` and, when the trial raised, `error.txt`.
So: no experiment folder and no `finalize.json` is *not started* (or *disabled*); experiment folders without
`finalize.json` are *running* while the run's driver holds the lease, else *failed* (a trial left an `error.txt`:
its last line is the reason) or *interrupted*; `finalize.json` is *done*, with its failed jobs named.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reward_search.search.finalize import FINALIZE_FILE

_REASON_CHARS = 160


@dataclass(frozen=True)
class FinalizeState:
    """`state` is one of disabled, not started, running, interrupted, failed, done, unreadable."""

    state: str
    detail: str = ""

    def line(self) -> str:
        return f"finalize: {self.state}" + (f" ({self.detail})" if self.detail else "")


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 3] + "..."


def _last_error_line(error_file: Path) -> str:
    try:
        lines = [line for line in error_file.read_text(encoding="utf-8", errors="replace").splitlines() if line]
    except OSError:
        return "error.txt does not read"
    return lines[-1] if lines else "error.txt is empty"


def _done(run_dir: Path, data: dict[str, Any]) -> FinalizeState:
    jobs = data.get("jobs") or []
    failed = [j for j in jobs if (j.get("result") or {}).get("status") == "failed"]
    detail = f"finished {data.get('finished', '?')}; best recipe {data.get('best_recipe') or 'none'}; {len(jobs)} jobs"
    if failed:
        reasons = "; ".join(f"{j.get('name')}: {_short(str(j['result'].get('error') or '?'))}" for j in failed)
        detail += f", {len(failed)} failed: {reasons}"
    return FinalizeState("done", detail)


def finalize_state(run_dir: str | Path, enabled: bool, driver_alive: bool) -> FinalizeState:
    """The finalize phase's state; `driver_alive`: a live driver holds the run directory's lease."""
    run_dir = Path(run_dir)
    path = run_dir / FINALIZE_FILE
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            return FinalizeState("unreadable", f"{FINALIZE_FILE}: {_short(str(exc))}")
        if isinstance(data, dict):
            return _done(run_dir, data)
        return FinalizeState("unreadable", f"{FINALIZE_FILE} holds no finalize outcome")
    trials = sorted(t for e in (run_dir / "tune").glob("finalize-*") if e.is_dir() for t in e.iterdir() if t.is_dir())
    if not trials:
        return FinalizeState("not started" if enabled else "disabled", "" if enabled else "finalize.enabled: false")
    if driver_alive:
        return FinalizeState("running", f"{len(trials)} trials started")
    errors = [t for t in trials if (t / "error.txt").is_file()]
    again = f"`reward-search finalize {run_dir}` runs it again, reusing its finished trials"
    if errors:
        return FinalizeState(
            "failed", f"trial {errors[0].name}: {_short(_last_error_line(errors[0] / 'error.txt'))}; {again}"
        )
    return FinalizeState("interrupted", f"{len(trials)} trials started, no {FINALIZE_FILE}; {again}")
