"""Replaying an LLM call that a killed driver already made: its saved reply is reused, not asked for again.

The driver saves the proposer's state before each call and, after a kill, issues the call again from that state
(`search/driver.py`, `DriverState.pending_call`). The LLM proposer then finds the call's transcript
(``proposals/round-<r>/call-<c>.json``, `transcripts.py`) already on disk; when it holds a reply to exactly the same
request, `recorded_reply` returns that reply and fills the call's record with the original attempts, tokens, dollars
and seconds, so the replay costs nothing, draws nothing new and spends what the killed call spent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from reward_search.proposers.transcripts import TranscriptStore
from reward_search.proposers.transport import CallRecord

# what a replayed call's record takes from the killed call's (the rest is filled again as its reply is parsed)
_SPENT = ("attempts", "ok", "error", "prompt_tokens", "completion_tokens", "cost_usd", "cost_known", "latency_s")
_SPENT_REPLY = ("finish_reason",)


def recorded_reply(
    store: TranscriptStore | None,
    record: CallRecord,
    messages: list[dict[str, str]],
    redact: Callable[[str], str],
) -> str | None:
    """The saved reply of `record`'s call when its transcript asked exactly `messages`; else None.

    On a hit `record` takes the saved call's spend (attempts, tokens, dollars, seconds, finish reason).
    """
    if store is None:
        return None
    saved = _load(store, record.round, record.call)
    if saved is None or not isinstance(saved.get("reply"), str):
        return None
    asked = (saved.get("request") or {}).get("messages")
    if asked != json.loads(redact(json.dumps(messages))):  # the transcript holds the redacted request
        return None
    spent = saved.get("record") or {}
    for name in (*_SPENT, *_SPENT_REPLY):
        if name in spent:
            setattr(record, name, spent[name])
    return saved["reply"]


def _load(store: TranscriptStore, round: int, call: int) -> dict[str, Any] | None:
    path = store.path(round, call)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
