"""Canned LLM replies for the LLM proposer: a `completion` function that answers through litellm, offline.

`ScriptedCompletion(replies)` passes call i to `litellm.completion` with ``mock_response=replies[i]``, so the
proposer's whole path (request, usage, cost from litellm's price list, parsing) runs without a network. It is a
plain picklable object, so a proposer holding it can still be pickled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reward_search.proposers.base import ProposerError
from reward_search.proposers.llm import import_litellm


@dataclass
class ScriptedCompletion:
    """Answers the i-th call with `replies[i]` (text, or an exception litellm raises); `inner` replaces
    `litellm.completion` (e.g. to record the request)."""

    replies: Sequence[Any]
    inner: Callable[..., Any] | None = None
    position: int = field(default=0)

    def __call__(self, **kwargs: Any) -> Any:
        if self.position >= len(self.replies):
            raise ProposerError("scripted replies exhausted: a test asked for more LLM calls than it provided")
        kwargs["mock_response"] = self.replies[self.position]
        self.position += 1
        return (self.inner or import_litellm().completion)(**kwargs)


def scripted_search(config: Any, replies: Sequence[Any], num_cpus: int = 2) -> Any:
    """`run_search(config)` on a fresh local Ray with the LLM proposer answering from `replies` (one per call): the
    real driver, sandbox, Tune and leaderboard with a replayed model. Returns the search's outcome."""
    import ray

    from reward_search.proposers.llm import LLMProposer
    from reward_search.search.driver import run_search
    from reward_search.task.gsm8k import load_splits
    from reward_search.testing.local_ray import start_local_ray

    proposer = LLMProposer(
        config.proposer, train=load_splits(config.data).train, completion=ScriptedCompletion(replies)
    )
    start_local_ray(num_cpus=num_cpus)
    try:
        return run_search(config, proposer=proposer, verbose=False)
    finally:
        ray.shutdown()
