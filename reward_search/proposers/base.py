"""The Proposer seam: ``propose(feedback, n, round)`` returns unvalidated candidates; `registry.py` picks the kind.

Proposers never execute candidate code: the driver validates every candidate (policy, sandbox, probes) and asks
again for replacements of rejected ones, possibly several times per round. A proposer is deterministic given its
seed, its inputs and the number of earlier calls (an LLM up to the LLM), and its state is plain JSON
(`state`/`load_state`), so a resumed search continues exactly where it stopped.
"""

from __future__ import annotations

import dataclasses
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from reward_search.candidates.candidate import RewardCandidate
from reward_search.candidates.settings import DEFAULT_IMPORTS
from reward_search.proposers.feedback import Feedback
from reward_search.proposers.settings import ProposerConfig
from reward_search.task.base import Problem, Task
from reward_search.task.base_rewards import BASE_REWARDS, GRADED_REWARDS

PROTECTED_NAMES: frozenset[str] = frozenset(BASE_REWARDS) | frozenset(GRADED_REWARDS)
# The driver's validation outcome for one proposed candidate: (candidate id, name, accepted, reasons).
Verdict = tuple[str, str, bool, Sequence[str]]


class ProposerError(RuntimeError):
    """A proposer cannot work at all (e.g. the LLM rejects the credentials); retrying will not help."""


class BudgetExhausted(ProposerError):
    """The proposer's dollar budget is spent: `propose` raises this before any call that would exceed it."""


class EmptyRound(ProposerError):
    """A round's proposer calls ran out without one valid reward: the search stops with the cause in one line."""


@dataclass
class ProposerUsage:
    """What a proposer has spent so far: calls, retries, tokens, dollars and seconds waiting for replies."""

    calls: int = 0
    failed_calls: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0  # the priced calls only
    latency_s: float = 0.0
    candidates: int = 0
    errors: list[str] = field(default_factory=list)
    unpriced_calls: int = 0  # calls whose price is unknown (a model litellm cannot price): not counted as $0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProposerUsage:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def spend_text(cost_usd: float | None, unpriced_calls: int = 0) -> str:
    """Dollars spent as a reader should see them: unpriced calls make the figure unknown, never $0."""
    if not unpriced_calls:
        return f"${cost_usd or 0.0:.4f}"
    calls = f"{unpriced_calls} call{'s' if unpriced_calls != 1 else ''}"
    if not cost_usd:
        return f"unknown ({calls} to an unpriced model; set proposer.input_usd_per_mtok to price it)"
    return f"${cost_usd:.4f} + unknown ({calls} to an unpriced model)"


@dataclass(frozen=True)
class ProposerContext:
    """What a proposer may need besides its config; each kind takes what it uses and ignores the rest."""

    task: Task | None = None  # the benchmark the rewards are for (None: GSM8K); the LLM prompt names it
    train: tuple[Problem, ...] = ()  # GRPO training pool: the LLM prompt samples Q/A from it
    pool: tuple[RewardCandidate, ...] = ()  # validated candidates the random control draws from
    allowed_imports: tuple[str, ...] = DEFAULT_IMPORTS  # shown to the LLM (CandidatesConfig.policy)
    completion: Callable[..., Any] | None = None  # replaces litellm.completion (tests, custom clients)


class Proposer(ABC):
    """Writes candidate reward functions. Subclasses set `kind` and implement `propose`; the driver calls the hooks
    `attach_run_dir`, `note_verdicts` and `round_summary` on every proposer (no-ops unless overridden)."""

    kind: ClassVar[str]

    def __init__(self, config: ProposerConfig) -> None:
        self.config = config
        self._usage = ProposerUsage()
        self._calls: dict[int, int] = {}  # round -> propose calls so far (seeds each call's randomness)

    @classmethod
    def create(cls, config: ProposerConfig, context: ProposerContext) -> Proposer:
        """Build from the config and the context (override to take what the kind needs)."""
        return cls(config)

    @abstractmethod
    def propose(self, feedback: Feedback, n: int, round: int) -> list[RewardCandidate]:
        """Up to about `n` new candidates for `round` (status ``proposed``, origin set); not validated."""

    def attach_run_dir(self, run_dir: str | Path) -> None:  # noqa: B027 (an optional hook)
        """The run directory this proposer works for (the LLM saves its transcripts there); no-op by default."""

    def note_verdicts(self, round: int, verdicts: Sequence[Verdict]) -> None:  # noqa: B027 (an optional hook)
        """The driver's validation outcome for candidates of `round` (self-correction); no-op by default."""

    def round_summary(self, round: int) -> str:
        """What this round's calls gave, for the one-line error of a round with no valid reward."""
        return "no candidate passed validation"

    def usage(self) -> ProposerUsage:
        """A copy of the running totals."""
        return ProposerUsage.from_dict(self._usage.to_dict())

    def _next_call(self, round: int) -> int:
        """The index of this call within `round` (0 for the first), advancing the counter."""
        index = self._calls.get(round, 0)
        self._calls[round] = index + 1
        self._usage.calls += 1
        return index

    def state(self) -> dict[str, Any]:
        """Everything needed to continue identically after a restart, as plain JSON."""
        return {
            "kind": self.kind,
            "calls": {str(r): c for r, c in sorted(self._calls.items())},
            "usage": self._usage.to_dict(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from `state` (as returned by `state`, possibly through JSON)."""
        if state.get("kind", self.kind) != self.kind:
            raise ValueError(f"state of a {state['kind']!r} proposer given to a {self.kind!r} proposer")
        self._calls = {int(r): int(c) for r, c in state.get("calls", {}).items()}
        self._usage = ProposerUsage.from_dict(state.get("usage", {}))


def safe_name(raw: str, fallback: str = "reward") -> str:
    """`raw` as a public Python identifier that is not a protected base reward's name."""
    name = re.sub(r"\W+", "_", raw.strip()).strip("_") or fallback
    if name[0].isdigit():
        name = f"r_{name}"
    if name in PROTECTED_NAMES:
        name = f"{name}_variant"
    return name


def unique_name(name: str, taken: set[str]) -> str:
    """`name`, or `name_2`, `name_3`, ... when taken (the result is added to `taken`)."""
    candidate, k = name, 2
    while candidate in taken:
        candidate, k = f"{name}_{k}", k + 1
    taken.add(candidate)
    return candidate
