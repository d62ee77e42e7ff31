from typing import Any, List, Optional
import re

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content", "") for m in completion)


def _last_number(text: str) -> Optional[float]:
    found = NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def numeric_closeness_reward(
    prompts: List[Any], completions: List[Any], answer: List[str], **kwargs: Any
) -> List[float]:
    """Graded reward: 1 for exact, decaying with relative error, -0.5 when no number."""
    scores: List[float] = []
    for completion, gold in zip(completions, answer):
        guess = _last_number(_text(completion))
        if guess is None:
            scores.append(-0.5)
            continue
        target = float(gold.replace(",", ""))
        error = abs(guess - target) / max(1.0, abs(target))
        scores.append(max(0.0, 1.0 - error))
    return scores
