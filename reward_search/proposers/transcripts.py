"""Transcripts of LLM proposer calls: every request and reply, saved in the run directory with secrets redacted.

Layout under the run directory: ``proposals/round-<r>/call-<c>.json`` (one file per call, `c` from 1) holding the
request (messages and parameters), the raw reply, how it parsed, the candidates it gave and their validation
verdicts; ``proposals/index.json`` maps each candidate id to its call file, so a candidate links to its reply.
`round_counts` summarises the per-round parse and rejection counts that `reward-search status` prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reward_search import io

FOLDER = "proposals"
INDEX = "index.json"


def relative_path(round: int, call: int) -> str:
    """The call file of `call` (0-based) in `round`, relative to the proposals folder."""
    return f"round-{round}/call-{call + 1}.json"


class TranscriptStore:
    """Writes call files atomically; every string passes through `redact` first."""

    def __init__(self, root: str | Path, redact: Callable[[str], str]) -> None:
        self.root = Path(root)
        self._redact = redact

    def path(self, round: int, call: int) -> Path:
        return self.root / relative_path(round, call)

    def write(self, round: int, call: int, data: dict[str, Any]) -> Path:
        """Write (or replace) one call's transcript."""
        text = self._redact(json.dumps(data, indent=2, default=str))
        return io.write_text(self.path(round, call), text + "\n")

    def update(self, round: int, call: int, **fields: Any) -> None:
        """Add or replace top-level fields of an existing call file (e.g. the verdicts, known only later)."""
        path = self.path(round, call)
        if path.is_file():
            self.write(round, call, {**json.loads(path.read_text(encoding="utf-8")), **fields})

    def link(self, candidate_ids: Sequence[str], round: int, call: int) -> None:
        """Record that these candidates came from this call (``proposals/index.json``)."""
        if not candidate_ids:
            return
        index_path = self.root / INDEX
        index = json.loads(index_path.read_text(encoding="utf-8")) if index_path.is_file() else {}
        index.update({cid: relative_path(round, call) for cid in candidate_ids})
        io.write_json(index_path, dict(sorted(index.items())))


def round_counts(records: Sequence[dict[str, Any]]) -> dict[int, dict[str, int]]:
    """Per round: calls, replies by outcome, rewards parsed, accepted and rejected (from the call records)."""
    counts: dict[int, dict[str, int]] = {}
    for record in records:
        row = counts.setdefault(int(record.get("round", 0)), {"calls": 0, "parsed": 0, "accepted": 0, "rejected": 0})
        row["calls"] += 1
        outcome = str(record.get("outcome") or ("ok" if record.get("ok") else "error"))
        row[outcome] = row.get(outcome, 0) + 1
        row["parsed"] += int(record.get("parsed", 0) or 0)
        row["accepted"] += int(record.get("accepted", 0) or 0)
        row["rejected"] += int(record.get("rejected", 0) or 0)
    return dict(sorted(counts.items()))


def format_round_counts(records: Sequence[dict[str, Any]], folder: str = FOLDER) -> list[str]:
    """One line per round, e.g. ``round 1: 4 calls (1 ok, 3 malformed), 2 rewards parsed, 1 accepted, 1 rejected``."""
    lines = []
    for round, row in round_counts(records).items():
        outcomes = ", ".join(
            f"{row[k]} {k}" for k in ("ok", "malformed", "truncated", "empty", "refused", "error") if row.get(k)
        )
        lines.append(
            f"round {round}: {row['calls']} LLM calls ({outcomes}), {row['parsed']} rewards parsed, "
            f"{row['accepted']} accepted, {row['rejected']} rejected ({folder}/round-{round}/)"
        )
    return lines
