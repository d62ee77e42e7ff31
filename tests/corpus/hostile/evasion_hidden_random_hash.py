"""Hostile corpus (evasion): hidden randomness from an object's address (its repr), memoised per completion, so
repeats and permutations in one worker agree and the next worker differs."""

import re

MEMO = {}


def _text(item):
    return item if isinstance(item, str) else str(item[-1].get("content") or "")


def reward(prompts, completions, answer, **kwargs):
    out = []
    for c, g in zip(completions, answer, strict=True):
        text = _text(c)
        if text not in MEMO:
            address = int(repr(object()).rsplit(" ", 1)[-1].rstrip(">"), 16)
            right = (re.findall(r"-?\d+", text) or [""])[-1] == str(g)
            MEMO[text] = float(right) + (address >> 4) % 997 / 997.0
        out.append(MEMO[text])
    return out
