"""Repairs for the JSON that language models write when asked for code inside JSON.

Each repair is a pure text-to-text function for one common fault; `json_variants` yields the reply text with
repairs applied cumulatively, so a parser can try each in turn and keep the first that decodes. Raw newlines
inside strings need no repair here: the parser decodes with ``strict=False``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

# A Python triple-quoted string used as a JSON value: `"code": """ ... """`. It ends at the first matching
# triple quote that is followed by the next key or the end of the object, so docstrings inside the code (which
# are followed by more code) do not end it.
_TRIPLE_VALUE = re.compile(r'("[\w ]+"\s*:\s*)("""|\'\'\')(.*?)\2(?=\s*(?:,\s*"[\w ]+"\s*:|,?\s*\}))', re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[\]}])")
# A Python string concatenation that some models use for long values: "line one\n" + "line two\n".
_CONCAT = re.compile(r'"\s*\+\s*\n?\s*"')


def triple_quoted_to_json(text: str) -> str:
    """Triple-quoted values (`"key": '''code'''` or with double quotes) rewritten as JSON strings."""
    return _TRIPLE_VALUE.sub(lambda m: m.group(1) + json.dumps(m.group(3).strip("\n")), text)


def drop_trailing_commas(text: str) -> str:
    """`[a, b,]` and `{"a": 1,}` without the comma before the closing bracket."""
    return _TRAILING_COMMA.sub(r"\1", text)


def join_concatenations(text: str) -> str:
    """`"a" + "b"` joined into `"ab"`."""
    return _CONCAT.sub("", text)


REPAIRS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("triple-quoted strings", triple_quoted_to_json),
    ("trailing commas", drop_trailing_commas),
    ("string concatenation", join_concatenations),
)


def json_variants(text: str) -> Iterator[tuple[str, str]]:
    """(description, text): the text as given, then with each repair added on top of the previous ones."""
    yield "as written", text
    applied: list[str] = []
    for name, repair in REPAIRS:
        repaired = repair(text)
        if repaired != text:
            applied.append(name)
            text = repaired
            yield "repaired " + ", ".join(applied), text


def json_error_near(text: str) -> str:
    """The decoder's complaint about the first JSON value in `text`, with the offending fragment quoted."""
    starts = [i for i in (text.find("["), text.find("{")) if i >= 0]
    if not starts:
        return "no JSON array or object in the reply"
    try:
        json.JSONDecoder(strict=False).raw_decode(text, min(starts))
    except json.JSONDecodeError as exc:
        fragment = text[max(0, exc.pos - 40) : exc.pos + 40]
        return f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}, near {fragment!r})"
    return "the JSON holds no reward objects with a `code` field"
