"""Annotates loosely typed inputs with `object` and `Any`, then narrows them."""

from __future__ import annotations

import re
from typing import Any


def as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts: list[str] = [m.get("content", "") for m in value if isinstance(m, dict)]
        return parts[-1] if parts else ""
    return ""


def last_number(text: str) -> str | None:
    found = re.findall(r"-?\d+(?:\.\d+)?", text.replace(",", ""))
    return found[-1] if found else None


def object_reward(prompts: list[object], completions: list[object], answer: list[str], **kwargs: Any) -> list[float]:
    return [1.0 if last_number(as_text(c)) == a else 0.0 for c, a in zip(completions, answer)]
