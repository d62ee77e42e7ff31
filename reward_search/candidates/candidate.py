"""RewardCandidate: a proposed reward's source with a content-hash id, and its immutable JSON store.

Storage rule: ``<root>/<id>.json`` is written once, atomically (temp file + ``os.link``, which fails rather than
overwrite), and never changed. It carries the validation verdict (status, reasons, probe report). Later lifecycle
changes (screening, done, failed, crashed, stopped) are appended to ``<root>/<id>.status.jsonl``; `CandidateStore.load`
overlays the latest one. So a candidate file is a permanent record of what was proposed and why it was accepted, and
`CandidateStore.accepted` is what a trial trains with: that record as validation wrote it, probe report included.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reward_search.candidates.status import Status, check_status
from reward_search.errors import UserError

_ID_RE = re.compile(r"^[0-9a-f]{16,64}$")


class CandidateRecordError(UserError):
    """A candidate's stored record (`<id>.json`) is missing, unreadable or not an accepted one (one line, exit 2)."""


class EntryError(ValueError):
    """The source has no usable entry function (or the named one is missing)."""


def normalise_source(source: str) -> str:
    """Source in a canonical layout (comments and formatting dropped) so cosmetic edits keep the same id."""
    text = source.replace("\r\n", "\n").replace("\r", "\n")
    try:
        return ast.unparse(ast.parse(text))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return "\n".join(line.rstrip() for line in text.strip().split("\n"))


def candidate_id(source: str, name: str) -> str:
    """sha256 of the normalised source and the entry name, hex, first 16 characters."""
    digest = hashlib.sha256(normalise_source(source).encode("utf-8") + b"\0" + name.encode("utf-8"))
    return digest.hexdigest()[:16]


def _takes_completions(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    args = node.args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    return "completions" in names


def find_entry(source: str, name: str | None = None) -> str:
    """The entry function: `name` when given, else the only public top-level function taking `completions`.

    Static (parses, never executes). Raises SyntaxError for unparsable source and EntryError otherwise.
    """
    tree = ast.parse(source)
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    if name is not None:
        if any(f.name == name for f in functions):
            return name
        raise EntryError(f"no top-level function named {name!r}")
    public = [f for f in functions if not f.name.startswith("_") and _takes_completions(f)]
    if len(public) == 1:
        return public[0].name
    if not public:
        raise EntryError("no public top-level function takes a `completions` argument")
    names = ", ".join(f.name for f in public)
    raise EntryError(f"several public functions take `completions` ({names}); choose one with a name")


@dataclass(frozen=True)
class Origin:
    """Who proposed a candidate: the proposer, the search round and the parents it was derived from."""

    proposer: str = "user"
    round: int = 0
    parents: tuple[str, ...] = ()
    transcript: str | None = None  # the LLM call this came from, relative to the run directory (proposals/...)


@dataclass(frozen=True)
class RewardCandidate:
    """A reward function proposed as Python source. `id` is derived from (source, name), never chosen."""

    name: str
    source: str
    description: str = ""
    origin: Origin = field(default_factory=Origin)
    status: str = Status.PROPOSED.value
    reasons: tuple[str, ...] = ()
    probe: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", check_status(self.status).value)  # a plain string in every record
        if not self.name.isidentifier():
            raise ValueError(f"candidate name {self.name!r} is not a Python identifier")

    @property
    def id(self) -> str:
        return candidate_id(self.source, self.name)

    @classmethod
    def from_source(cls, source: str, name: str | None = None, **fields: Any) -> RewardCandidate:
        """A candidate whose name is its entry function (see `find_entry`)."""
        return cls(name=find_entry(source, name), source=source, **fields)

    def with_verdict(self, status: str, reasons: tuple[str, ...] = (), probe: dict[str, Any] | None = None):
        """A copy carrying a validation verdict."""
        return dataclasses.replace(self, status=status, reasons=tuple(reasons), probe=probe)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["origin"]["parents"] = list(self.origin.parents)
        data["reasons"] = list(self.reasons)
        return {"id": self.id, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RewardCandidate:
        origin = data.get("origin") or {}
        candidate = cls(
            name=data["name"],
            source=data["source"],
            description=data.get("description", ""),
            origin=Origin(
                proposer=origin.get("proposer", "user"),
                round=int(origin.get("round", 0)),
                parents=tuple(origin.get("parents", ())),
                transcript=origin.get("transcript"),
            ),
            status=data.get("status", "proposed"),
            reasons=tuple(data.get("reasons", ())),
            probe=data.get("probe"),
        )
        if "id" in data and data["id"] != candidate.id:
            raise ValueError(f"candidate id {data['id']!r} does not match its content ({candidate.id})")
        return candidate


class CandidateStore:
    """One immutable JSON file per candidate under `root`, plus an append-only status log per candidate."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, cid: str) -> Path:
        if not _ID_RE.match(cid):
            raise ValueError(f"{cid!r} is not a candidate id")
        return self.root / f"{cid}.json"

    def save(self, candidate: RewardCandidate) -> bool:
        """Write the candidate once. Returns False (and writes nothing) when its id is already stored."""
        final = self.path(candidate.id)
        if final.exists():
            return False
        self.root.mkdir(parents=True, exist_ok=True)
        text = json.dumps(candidate.to_dict(), indent=2, sort_keys=True) + "\n"
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{candidate.id}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o644)  # mkstemp's 0600 otherwise; every other record of a run is 0644 (reward_search.io)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, final)  # atomic and never replaces an existing file (unlike os.replace)
            except FileExistsError:
                return False
        finally:
            os.unlink(tmp)
        return True

    def set_status(self, cid: str, status: str, reason: str = "") -> None:
        """Record a lifecycle change (e.g. screening -> crashed) without touching the candidate file."""
        status = check_status(status).value
        if not self.path(cid).exists():
            raise KeyError(cid)
        line = json.dumps({"status": status, "reason": reason}) + "\n"
        with open(self.root / f"{cid}.status.jsonl", "a", encoding="utf-8") as handle:
            handle.write(line)

    def load(self, cid: str) -> RewardCandidate:
        """The stored candidate with its latest recorded status (and that status's reason) applied."""
        candidate = RewardCandidate.from_dict(json.loads(self.path(cid).read_text(encoding="utf-8")))
        log = self.root / f"{cid}.status.jsonl"
        if log.exists():
            last = None
            for line in log.read_text(encoding="utf-8").splitlines():
                try:
                    last = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn final line from a crash mid-append
            if last is not None:
                reasons = (*candidate.reasons, last["reason"]) if last.get("reason") else candidate.reasons
                candidate = dataclasses.replace(candidate, status=last["status"], reasons=reasons)
        return candidate

    def accepted(self, cid: str) -> RewardCandidate:
        """The immutable record validation wrote for an accepted candidate, probe report included, unchanged (no
        status overlay): what its trials train with. A missing, unreadable or not-accepted record is a
        `CandidateRecordError` naming the file, never a rebuilt candidate without its probes."""
        path = self.path(cid)
        try:
            candidate = RewardCandidate.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise CandidateRecordError(f"{path}: the candidate's record is missing (written at validation)") from None
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise CandidateRecordError(f"{path}: unreadable candidate record ({type(exc).__name__}: {exc})") from None
        if candidate.id != cid:
            raise CandidateRecordError(f"{path}: holds candidate {candidate.id}, not {cid}")
        if candidate.status != Status.ACCEPTED:
            raise CandidateRecordError(f"{path}: the candidate was {candidate.status} at validation, not accepted")
        return candidate

    def ids(self) -> Iterator[str]:
        if self.root.is_dir():
            for path in sorted(self.root.glob("*.json")):
                if _ID_RE.match(path.stem):
                    yield path.stem
