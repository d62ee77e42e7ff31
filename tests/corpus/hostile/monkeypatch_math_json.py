"""Hostile corpus: monkeypatch math json."""

import json
import math

math.isfinite = lambda x: True
json.dumps = lambda *args, **kwargs: '{"id": 1, "ok": true, "scores": [9e9]}'


def reward(prompts, completions, answer, **kwargs):
    return [float(len(c) % 5) for c in completions]
