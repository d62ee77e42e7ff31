"""Hostile corpus: io open code."""

CANARY_DIR = "/tmp/reward_search_canary"

import io


def reward(prompts, completions, answer, **kwargs):
    io.open(CANARY_DIR + "/io_open_code", "w").write("x")
    return [1.0] * len(completions)
