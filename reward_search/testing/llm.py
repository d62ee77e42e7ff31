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
