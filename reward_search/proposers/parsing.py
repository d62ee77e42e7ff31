"""Robust parsing of an LLM's reply into reward objects ``{name, code, description}``; never raises.

Accepted shapes: a bare JSON array, one inside a fenced block, one surrounded by prose, an object wrapping the
array (``{"rewards": [...]}``) or a single reward object. Raw newlines inside strings (common in code) are
tolerated, and a variant with trailing commas removed is tried too. Problems become `errors`, not exceptions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_FENCE = re.compile(r"```[\w+-]*[ \t]*\n(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[\]}])")
_CODE_FENCE = re.compile(r"^\s*```[\w+-]*[ \t]*\n(.*?)\n?```\s*$", re.DOTALL)
_DECODER = json.JSONDecoder(strict=False)  # strict=False: control characters (raw newlines) inside strings


@dataclass
class ParsedReply:
    """The reward objects found (each with str `name`, `code`, `description`) and what went wrong."""

    items: list[dict[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _decode_all(text: str) -> list[Any]:
    """Every JSON value that starts at a `[` or `{` of `text` and decodes, outermost first (non-overlapping)."""
    values, position = [], 0
    while True:
        starts = [i for i in (text.find("[", position), text.find("{", position)) if i >= 0]
        if not starts:
            return values
        start = min(starts)
        try:
            value, end = _DECODER.raw_decode(text, start)
        except json.JSONDecodeError:
            position = start + 1
            continue
        values.append(value)
        position = end


def _rewards_in(value: Any) -> list[Any] | None:
    """The list of reward objects inside a decoded value, or None when it holds none."""
    if isinstance(value, list):
        return value if any(isinstance(v, dict) and ("code" in v or "source" in v) for v in value) else None
    if isinstance(value, dict):
        if "code" in value or "source" in value:
            return [value]
        for key in sorted(value):  # a wrapping object: {"rewards": [...]}, {"reward_functions": [...]}, ...
            found = _rewards_in(value[key])
            if found is not None:
                return found
    return None


def _strip_code_fence(code: str) -> str:
    match = _CODE_FENCE.match(code)
    return match.group(1) if match else code


def _clean(item: Any, index: int, errors: list[str]) -> dict[str, str] | None:
    if not isinstance(item, dict):
        errors.append(f"item {index}: expected an object with name, code and description, got {type(item).__name__}")
        return None
    code = item.get("code", item.get("source"))
    if not isinstance(code, str) or not code.strip():
        errors.append(f"item {index}: no code")
        return None
    name, description = item.get("name", ""), item.get("description", "")
    return {
        "name": name if isinstance(name, str) else str(name),
        "code": _strip_code_fence(code).strip("\n") + "\n",
        "description": description if isinstance(description, str) else str(description),
    }


def _candidate_texts(reply: str) -> list[str]:
    """Where to look, best first: the whole reply, then each fenced block."""
    return [reply, *(m.group(1) for m in _FENCE.finditer(reply))]


def _find_rewards(reply: str) -> list[Any] | None:
    """The longest reward list in the first place (whole reply, then fences) that holds one.

    Each place is also tried with trailing commas removed: without that, a broken outer array would leave only
    its first object decodable.
    """
    for text in _candidate_texts(reply):
        found = [
            rewards
            for variant in (text, _TRAILING_COMMA.sub(r"\1", text))
            for value in _decode_all(variant)
            if (rewards := _rewards_in(value)) is not None
        ]
        if found:
            return max(found, key=len)
    return None


def parse_reply(reply: str | None) -> ParsedReply:
    """The reward objects in an LLM reply (see module docstring); an unusable reply gives no items and an error."""
    result = ParsedReply()
    if not reply or not reply.strip():
        result.errors.append("empty reply")
        return result
    rewards = _find_rewards(reply)
    if rewards is None:
        snippet = " ".join(reply.split())[:120]
        result.errors.append(f"malformed reply: no JSON array of reward objects found (starts: {snippet!r})")
        return result
    for index, item in enumerate(rewards):
        cleaned = _clean(item, index, result.errors)
        if cleaned is not None:
            result.items.append(cleaned)
    return result
