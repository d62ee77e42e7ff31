"""One escaping function for every string a candidate controls, before it reaches a terminal, a log or a prompt.

A candidate's error messages, names, descriptions and reasons may hold control bytes, ANSI escapes, newlines (a
forged `accepted:` line), bidirectional overrides or lone surrogates (which crash a UTF-8 `print`). `shown` turns
each such character into a visible escape (`\\x1b`, `\\n`, `\\u202e`, `\\ud800`), so the result is one line of
printable text that encodes to UTF-8. Backslashes stay as they are: the result has nothing left to escape, so
`shown(shown(x)) == shown(x)` and the function may be applied at every layer the string passes through.
"""

from __future__ import annotations

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def shown(text: object, limit: int | None = None) -> str:
    """`text` as one printable line: every non-printable character (controls, escapes, newlines, format and
    separator characters, surrogates) escaped; cut to `limit` characters (before escaping) with `...` when longer.

    Never raises: a non-string is shown through `str()`, and an object whose `str()` fails as `<unprintable>`.
    """
    if not isinstance(text, str):
        try:
            text = str(text)
        except Exception:
            text = "<unprintable>"
        if type(text) is not str:  # a str subclass whose methods the candidate wrote
            text = str.__str__(text)
    else:
        text = str.__str__(text)
    cut = limit is not None and len(text) > limit
    if cut:
        text = text[:limit]
    if not text.isprintable():
        text = "".join(c if c.isprintable() else _escaped(c) for c in text)
    return text + "..." if cut else text
