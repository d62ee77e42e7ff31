"""Shaping reward: completions in a sensible length band, with an answer, score higher."""

import re

LOW, HIGH = 80, 1500


def length_band_reward(prompts, completions, **kwargs):
    scores = []
    for completion in completions:
        text = completion if isinstance(completion, str) else completion[0]["content"]
        n = len(text)
        band = 1.0 if LOW <= n <= HIGH else 0.5 if n < 3 * HIGH else 0.0
        has_answer = bool(re.search(r"(<solution>|answer is|####|boxed)", text))
        scores.append(band * (1.0 if has_answer else 0.3))
    return scores
