"""The rollout bank, read side: the policy's own completions to training-pool questions, graded by the task.

A bank is one Parquet file, one row per completion (`COLUMNS`), in groups of one question's samples. It is
written by `training/bank.py` (which owns the model and the task); the sandbox side only reads it, so that the
probes and the spot re-probes send a candidate exactly what training would: chat messages with the training
system prompt, grouped per prompt. `fingerprint` names what produced it (model, task, prompt, sampling); a bank
whose fingerprint is not the expected one is refused (`BankMismatch`), never reused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from reward_search.errors import UserError

COLUMNS: tuple[str, ...] = (
    "fingerprint",
    "group",  # the question's place in the bank; every row of a group shares the prompt
    "question_index",  # the question's index in the task's training pool
    "prompt",  # JSON: the chat messages training sends (system prompt, example turns, question)
    "completion",  # the assistant's text
    "answer",  # the gold answer (the dataset column TRL passes to rewards)
    "correct",  # graded by the task (strict)
    "format",  # "tags" when the completion is in the training format, else "other"
    "synthetic",  # written from the gold solution (or a realistic slip), not sampled
    "base_reward",  # the protected base rewards' total (default weights), for the predicted signal
)
SHIPPED = Path(__file__).resolve().parent.parent / "task" / "data" / "banks"


class BankError(UserError):
    """A bank that cannot be used: unreadable, malformed, or of the wrong fingerprint."""


class BankMismatch(BankError):
    """The bank was produced for another model, task, prompt or sampling setting: it must be rebuilt."""


@dataclass(frozen=True)
class BankRow:
    group: int
    prompt: tuple[dict[str, str], ...]
    completion: str
    answer: str
    correct: bool
    format: str
    synthetic: bool
    base_reward: float = 0.0

    def messages(self) -> list[dict[str, str]]:
        return [dict(m) for m in self.prompt]


@dataclass(frozen=True)
class Bank:
    """A loaded bank: its rows grouped per question, and where it came from."""

    path: str
    fingerprint: str
    groups: tuple[tuple[BankRow, ...], ...]

    @property
    def rows(self) -> list[BankRow]:
        return [row for group in self.groups for row in group]

    @property
    def size(self) -> int:
        return sum(len(g) for g in self.groups)

    def applicable(self) -> str | None:
        """None when the pre-screen can rank on it; else the one-line reason it cannot."""
        rows = self.rows
        if not any(r.correct for r in rows) or all(r.correct for r in rows):
            kind = "correct" if not any(r.correct for r in rows) else "wrong"
            return f"the bank {Path(self.path).name} has no {kind} completion for any question"
        return None


def _row(record: dict[str, Any], where: str) -> BankRow:
    try:
        prompt = tuple(json.loads(record["prompt"]))
        if not all(isinstance(m, dict) and "content" in m for m in prompt):
            raise ValueError("prompt is not a list of chat messages")
        return BankRow(
            int(record["group"]),
            prompt,
            str(record["completion"]),
            str(record["answer"]),
            bool(record["correct"]),
            str(record["format"]),
            bool(record["synthetic"]),
            float(record["base_reward"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BankError(f"{where}: malformed bank row ({exc})") from None


@cache
def _read(path: str, mtime_ns: int) -> Bank:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise BankError(f"{path}: not a readable Parquet bank ({exc})") from None
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise BankError(f"{path}: not a rollout bank (missing columns {', '.join(missing)})")
    records = table.to_pylist()
    if not records:
        raise BankError(f"{path}: the bank is empty")
    prints = {r["fingerprint"] for r in records}
    if len(prints) != 1:
        raise BankError(f"{path}: rows of {len(prints)} different fingerprints")
    grouped: dict[int, list[BankRow]] = {}
    for number, record in enumerate(records):
        row = _row(record, f"{path} row {number}")
        grouped.setdefault(row.group, []).append(row)
    groups = tuple(tuple(grouped[key]) for key in sorted(grouped))
    return Bank(path, prints.pop(), groups)


def load_bank(path: str | Path, fingerprint: str | None = None) -> Bank:
    """The bank at `path`; `BankMismatch` when `fingerprint` is given and differs from the bank's."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise BankError(f"{file}: no rollout bank there")
    bank = _read(str(file), file.stat().st_mtime_ns)
    if fingerprint and bank.fingerprint != fingerprint:
        raise BankMismatch(
            f"{file}: bank fingerprint {bank.fingerprint[:12]} is not this run's {fingerprint[:12]} "
            "(another model, task, prompt or sampling setting): rebuild it"
        )
    return bank


def shipped_bank_path(name: str = "embedded-gsm8k-sample") -> Path:
    """A bank that ships with the package (for `rewards check` without generation)."""
    return SHIPPED / f"{name}.parquet"


def default_bank(path: str | None = None, fingerprint: str | None = None) -> Bank:
    """`candidates.bank.path` when set, else the shipped bank of the embedded model on the packaged sample."""
    return load_bank(path or shipped_bank_path(), fingerprint or None)
