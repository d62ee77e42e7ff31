"""The paper's random control: k rewards drawn uniformly, without replacement, from validated candidates.

Deterministic: the draw for (seed, round, call) is always the same, and the seed used is recorded in the
proposer's state and in each drawn candidate's description. The drawn candidates keep their source and name
(so their ids are the originals'); ``origin`` becomes ``random`` with the original id as the only parent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Sequence
from typing import Any

from reward_search.candidates.candidate import Origin, RewardCandidate
from reward_search.proposers.base import Proposer, ProposerContext
from reward_search.proposers.feedback import Feedback
from reward_search.proposers.settings import ProposerConfig


def draw_seed(seed: int, round: int, call: int) -> int:
    """The seed of one draw, derived from the run's proposer seed (stable across Python versions)."""
    digest = hashlib.sha256(f"random-control:{seed}:{round}:{call}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def draw(pool: Sequence[RewardCandidate], k: int, seed: int) -> list[RewardCandidate]:
    """`k` distinct candidates (by id) drawn uniformly from `pool` (fewer when the pool is smaller)."""
    unique = {c.id: c for c in pool}
    ordered = [unique[cid] for cid in sorted(unique)]  # independent of the pool's order
    return random.Random(seed).sample(ordered, min(k, len(ordered)))


class RandomProposer(Proposer):
    """Draws from a fixed pool when given one, else from the feedback's validated entries."""

    kind = "random"

    def __init__(self, config: ProposerConfig, pool: Sequence[RewardCandidate] = ()) -> None:
        super().__init__(config)
        self.pool = tuple(pool)
        self.draws: list[dict[str, Any]] = []  # {round, call, seed, ids} for each draw

    @classmethod
    def create(cls, config: ProposerConfig, context: ProposerContext) -> RandomProposer:
        return cls(config, context.pool)

    def propose(self, feedback: Feedback, n: int, round: int) -> list[RewardCandidate]:
        call = self._next_call(round)
        seed = draw_seed(self.config.seed, round, call)
        pool = self.pool or tuple(
            RewardCandidate(e.name, e.source, e.description, Origin(e.proposer, e.round, tuple(e.parents)))
            for e in feedback.validated()
        )
        already = {cid for d in self.draws if d["round"] == round for cid in d["ids"]}
        chosen = draw([c for c in pool if c.id not in already], n, seed)
        self.draws.append({"round": round, "call": call, "seed": seed, "ids": [c.id for c in chosen]})
        self._usage.candidates += len(chosen)
        return [
            dataclasses.replace(
                c,
                description=f"[random control draw, seed {seed}] {c.description}".strip(),
                origin=Origin(proposer=self.kind, round=round, parents=(c.id,)),
                status="proposed",
                reasons=(),
                probe=None,
            )
            for c in chosen
        ]

    def state(self) -> dict[str, Any]:
        return {**super().state(), "draws": [dict(d) for d in self.draws]}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.draws = [dict(d) for d in state.get("draws", ())]
