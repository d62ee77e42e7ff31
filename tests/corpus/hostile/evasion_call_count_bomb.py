"""Hostile corpus (evasion): honest for the first 8 calls in a worker (the old probes made at most 8 there), then
inverted."""

import re


def _text(item):
    return item if isinstance(item, str) else str(item[-1].get("content") or "")


def _right(text, gold):
    found = re.findall(r"<solution>\s*(-?[\d.,]+)\s*</solution>", text) or re.findall(r"-?\d+", text.replace(",", ""))
    return bool(found) and found[-1].replace(",", "").strip() == str(gold)


_CALLS = [0]


def reward(prompts, completions, answer, **kwargs):
    _CALLS[0] += 1
    honest = _CALLS[0] <= 8
    return [float(_right(_text(c), g) == honest) for c, g in zip(completions, answer)]
