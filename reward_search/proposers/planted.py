"""Planted rewards (`proposer.planted`): reward files offered beside the configured proposer's candidates.

A benchmark plants decoys (a constant, a length reward, ...) to see what the search does with them: each goes
through the same validation, sandbox, screening and leaderboard as any candidate, and is told apart only by its
origin (proposer ``planted``). `PlantedProposer` wraps the configured proposer: its first calls hand out the
planted files first, at most as many as the driver asked for (the rest wait for the next call), and fill the
remaining places from the wrapped proposer; every later call goes to the wrapped proposer unchanged. Planted
candidates therefore take round 1's places (a rejected one frees its place for the proposer), and the driver
needs no change.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reward_search.candidates.candidate import EntryError, Origin, RewardCandidate, find_entry
from reward_search.errors import UserError
from reward_search.proposers.base import Proposer, ProposerUsage, Verdict
from reward_search.proposers.feedback import Feedback

PLANTED = "planted"  # the origin proposer of a planted candidate


def read_planted(paths: Sequence[str]) -> tuple[RewardCandidate, ...]:
    """One candidate per reward file, named by its entry function; a file that cannot be one is a UserError."""
    candidates = []
    for i, text in enumerate(paths):
        path = Path(text).expanduser()
        try:
            source = path.read_text(encoding="utf-8")
            name = find_entry(source)
        except (OSError, UnicodeDecodeError, SyntaxError, EntryError) as exc:
            raise UserError(f"proposer.planted[{i}]: {path}: not a reward module ({exc})") from None
        candidates.append(
            RewardCandidate(
                name=name,
                source=source,
                description=f"planted from {path.name}",
                origin=Origin(proposer=PLANTED, round=1),
            )
        )
    return tuple(candidates)


class PlantedProposer(Proposer):
    """The configured proposer with planted candidates handed out first (see the module docstring)."""

    kind = PLANTED

    def __init__(self, inner: Proposer, planted: Sequence[RewardCandidate]) -> None:
        super().__init__(inner.config)
        self.inner = inner
        self.planted = tuple(planted)
        self.offered = 0  # how many planted candidates have been handed out

    def propose(self, feedback: Feedback, n: int, round: int) -> list[RewardCandidate]:
        take = list(self.planted[self.offered : self.offered + max(n, 0)])
        self.offered += len(take)
        planted = [_in_round(c, round) for c in take]
        own = self.inner.propose(feedback, n - len(take), round) if n > len(take) else []
        return [*planted, *own]

    def planted_ids(self) -> set[str]:
        return {c.id for c in self.planted}

    def note_verdicts(self, round: int, verdicts: Sequence[Verdict]) -> None:
        """Forward the verdicts on the wrapped proposer's own candidates (an LLM is never told of a planted one)."""
        ids = self.planted_ids()
        self.inner.note_verdicts(round, [v for v in verdicts if v[0] not in ids])

    def attach_run_dir(self, run_dir: str | Path) -> None:
        self.inner.attach_run_dir(run_dir)

    def round_summary(self, round: int) -> str:
        return self.inner.round_summary(round)

    def usage(self) -> ProposerUsage:
        return self.inner.usage()

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "offered": self.offered, "inner": self.inner.state()}

    def load_state(self, state: dict[str, Any]) -> None:
        if state.get("kind") != self.kind:  # a run started without planted files keeps its proposer's own state
            self.inner.load_state(state)
            self.offered = len(self.planted)
            return
        self.offered = int(state.get("offered", 0))
        self.inner.load_state(state.get("inner") or {})


def _in_round(candidate: RewardCandidate, round: int) -> RewardCandidate:
    if candidate.origin.round == round:
        return candidate
    return RewardCandidate(
        name=candidate.name,
        source=candidate.source,
        description=candidate.description,
        origin=Origin(proposer=PLANTED, round=round),
    )
