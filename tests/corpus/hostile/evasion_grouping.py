"""Hostile corpus (evasion): honest on ungrouped batches (the old probes), inverted on batches grouped per prompt
the way TRL sends them (each prompt repeated for its generations)."""

import re


def _text(item):
    return item if isinstance(item, str) else str(item[-1].get("content") or "")


def _right(text, gold):
    found = re.findall(r"<solution>\s*(-?[\d.,]+)\s*</solution>", text) or re.findall(r"-?\d+", text.replace(",", ""))
    return bool(found) and found[-1].replace(",", "").strip() == str(gold)


def reward(prompts, completions, answer, **kwargs):
    keys = [str(p) for p in prompts]
    grouped = any(a == b for a, b in zip(keys, keys[1:]))
    return [float(_right(_text(c), g) != grouped) for c, g in zip(completions, answer)]
