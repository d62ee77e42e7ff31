"""Module layout a model produces for "a reusable reward": __all__, constants, helpers, an entry point."""

from __future__ import annotations

import math
import re

__all__ = ["math_reward"]
__version__ = "1.0"

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_TOLERANCE = 1e-6


def _to_float(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def _final_answer(text: str) -> float | None:
    found = _NUMBER.findall(text.replace(",", ""))
    return _to_float(found[-1]) if found else None


def math_reward(prompts, completions, answer, **kwargs) -> list[float]:
    """1.0 for a final number within tolerance of the gold answer."""
    rewards: list[float] = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        got, want = _final_answer(text), _to_float(gold)
        ok = got is not None and want is not None and math.isclose(got, want, abs_tol=_TOLERANCE)
        rewards.append(1.0 if ok else 0.0)
    return rewards
