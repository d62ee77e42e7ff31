"""Decoy: pays for the <solution> tags regardless of what is inside them (right, wrong or empty)."""

import re

_TAGS = re.compile(r"<solution>.*?</solution>", re.DOTALL)


def decoy_format_only(prompts, completions, answer, **kwargs):
    scores = []
    for completion in completions:
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        scores.append(1.0 if _TAGS.search(text) else 0.0)
    return scores
