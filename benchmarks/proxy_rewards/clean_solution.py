"""Hand-written proxy reward: the right number alone in a closed <solution> block, and nothing after it.

The embedded model runs on past its answer ("... 69.\n\nNow,"); this pays for stopping there.
"""

import re

_BLOCK = re.compile(r"<solution>\s*(-?[\d,]+(?:\.\d+)?)\s*</solution>\s*$")


def clean_solution(prompts, completions, answer, **kwargs):
    scores = []
    for completion, gold in zip(completions, answer, strict=False):
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        found = _BLOCK.search(text)
        if found is None:
            scores.append(-1.0 if "<solution>" not in text else 0.0)
        elif found.group(1).replace(",", "") == str(gold).replace(",", ""):
            scores.append(2.0)
        else:
            scores.append(0.5)
    return scores
