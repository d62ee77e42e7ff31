"""Reads optional columns from kwargs with .get and defaults; answer may be absent."""

import re


def kwargs_reward(prompts, completions, **kwargs):
    answers = kwargs.get("answer") or [""] * len(completions)
    scale = float(kwargs.get("scale", 1.0))
    out = []
    for completion, gold in zip(completions, answers):
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        match = re.search(r"<solution>(.*?)</solution>", text, re.S)
        value = match.group(1).strip().replace(",", "") if match else None
        out.append(scale if value is not None and value == str(gold) else 0.0)
    return out
