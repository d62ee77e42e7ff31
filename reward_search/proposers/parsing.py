"""Parse an LLM reply into reward objects ``{name, code, description}``.

Two formats are accepted, tried in this order:

1. **Fenced blocks** (what the prompt asks for, and what models write reliably): one fenced ```python block per
   reward, under a short header with ``Reward: <name>`` and ``Description: <text>`` lines. A last block whose
   closing fence is missing (a reply cut off, or a forgetful model) is kept when its code still parses.
2. **JSON** (what structured output returns, and what older prompts asked for): an array of objects, an object
   wrapping one (``{"rewards": [...]}``) or a single object, anywhere in the reply or in a fenced block. Faulty
   JSON is repaired (`repair.py`): triple-quoted strings, trailing commas, string concatenation; raw newlines in
   strings are accepted as they are.

Problems become `errors` (each quoting the offending fragment, so the next call can be told), never exceptions.
`reason` classifies a reply without rewards: ``empty``, ``refused`` or ``malformed``.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

from reward_search.proposers.repair import json_error_near, json_variants

_FENCE_LINE = re.compile(r"^\s*```+\s*([\w+.-]*)\s*$")
_JSON_FENCE = re.compile(r"```[\w+-]*[ \t]*\n(.*?)```", re.DOTALL)
_CODE_FENCE = re.compile(r"^\s*```[\w+-]*[ \t]*\n(.*?)\n?```\s*$", re.DOTALL)
_DEF = re.compile(r"^\s*def\s+\w+\s*\(", re.MULTILINE)
_HEADER_NAME = re.compile(r"^[#*>\s-]*(?:reward|name)(?:\s*\d+)?\s*[:\-\u2013]\s*[`*\s]*([A-Za-z_]\w*)", re.I | re.M)
_HEADER_DESCRIPTION = re.compile(r"^[#*>\s-]*description\s*[:\-\u2013][*\s]*(.+)$", re.I | re.M)
_REFUSAL = re.compile(r"\b(?:I can(?:no|')t|I'm sorry|I am sorry|I won't|I will not|as an AI)\b", re.I)
_PYTHON_LANGS = {"", "python", "py", "python3"}
_DECODER = json.JSONDecoder(strict=False)  # strict=False: control characters (raw newlines) inside strings


@dataclass
class ParsedReply:
    """The reward objects found (each with str `name`, `code`, `description`), what went wrong, and how."""

    items: list[dict[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    format: str = "none"  # fenced | json | none
    repairs: str = ""  # which JSON repairs were needed, when any
    reason: str = ""  # why there are no items: empty | refused | malformed ("" when there are items)


@dataclass
class _Block:
    lang: str
    header: str  # the text between the previous block and this one
    code: str
    closed: bool


# --- fenced blocks ---------------------------------------------------------------------------------------------


def _blocks(reply: str) -> list[_Block]:
    """Every fenced block with the prose before it; an unclosed last block runs to the end of the reply."""
    blocks: list[_Block] = []
    prose: list[str] = []
    code: list[str] | None = None
    lang = ""
    for line in reply.splitlines():
        fence = _FENCE_LINE.match(line)
        if code is None:
            if fence:
                code, lang = [], fence.group(1).lower()
            else:
                prose.append(line)
        elif fence and not fence.group(1):
            blocks.append(_Block(lang, "\n".join(prose), "\n".join(code), True))
            prose, code = [], None
        else:
            code.append(line)
    if code is not None:
        blocks.append(_Block(lang, "\n".join(prose), "\n".join(code), False))
    return blocks


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def _unclosed_code(code: str, max_prose_lines: int = 8) -> str | None:
    """The code of a block without a closing fence: as is, or without trailing prose lines; None if cut off."""
    lines = code.rstrip().splitlines()
    for drop in range(min(max_prose_lines, len(lines) - 1) + 1):
        kept = "\n".join(lines[: len(lines) - drop])
        if _DEF.search(kept) and _parses(kept):
            return kept
    return None


def _fenced_rewards(reply: str, errors: list[str]) -> list[dict[str, str]]:
    """One reward per ```python block that defines a function, named and described by the header above it."""
    items = []
    for block in _blocks(reply):
        if block.lang not in _PYTHON_LANGS or not _DEF.search(block.code) or block.code.lstrip()[:1] in "[{":
            continue
        code = block.code if block.closed else _unclosed_code(block.code)
        if code is None:
            tail = block.code.rstrip()[-60:]
            errors.append(f"reward {len(items) + 1}: cut off (no closing ``` and the code ends with {tail!r})")
            continue
        names = _HEADER_NAME.findall(block.header)
        descriptions = _HEADER_DESCRIPTION.findall(block.header)
        items.append(
            {
                "name": names[-1] if names else "",
                "code": code.strip("\n") + "\n",
                "description": descriptions[-1].strip().strip("*").strip() if descriptions else "",
            }
        )
    return items


# --- JSON ------------------------------------------------------------------------------------------------------


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


def _json_rewards(reply: str) -> tuple[list[Any] | None, str]:
    """The longest reward list in the first place (whole reply, then fences) that holds one, and the repairs used.

    Each place is tried as written and then with repairs: without them, a broken outer array would leave only its
    first object decodable, or nothing at all.
    """
    for text in [reply, *(m.group(1) for m in _JSON_FENCE.finditer(reply))]:
        found = [
            (rewards, how)
            for how, variant in json_variants(text)
            for value in _decode_all(variant)
            if (rewards := _rewards_in(value)) is not None
        ]
        if found:
            rewards, how = max(found, key=lambda pair: len(pair[0]))
            return rewards, "" if how == "as written" else how
    return None, ""


# --- the entry point -------------------------------------------------------------------------------------------


def _no_rewards(reply: str, result: ParsedReply) -> ParsedReply:
    if "def " not in reply and _REFUSAL.search(reply):
        result.reason = "refused"
        result.errors.append(f"refused: {' '.join(reply.split())[:160]!r}")
        return result
    result.reason = "malformed"
    result.errors.append(
        "malformed reply: no ```python block defining a reward function, and no usable JSON: " + json_error_near(reply)
    )
    return result


def parse_reply(reply: str | None) -> ParsedReply:
    """The reward objects in an LLM reply (see module docstring); an unusable reply gives no items and an error."""
    result = ParsedReply()
    if not reply or not reply.strip():
        result.reason = "empty"
        result.errors.append("empty reply")
        return result
    json_first = reply.lstrip().startswith(("[", "{", "```json"))  # code fences may sit inside its strings
    rewards, repairs = _json_rewards(reply) if json_first else (None, "")
    fenced = [] if rewards is not None else _fenced_rewards(reply, result.errors)
    if fenced:
        result.items, result.format = fenced, "fenced"
        return result
    if rewards is None and not json_first:
        rewards, repairs = _json_rewards(reply)
    if rewards is None:
        return _no_rewards(reply, result)
    result.format, result.repairs = "json", repairs
    result.errors.clear()  # a cut-off fenced block inside JSON-shaped text is not an error of the JSON
    for index, item in enumerate(rewards):
        cleaned = _clean(item, index, result.errors)
        if cleaned is not None:
            result.items.append(cleaned)
    if not result.items:
        result.reason = "malformed"
    return result
