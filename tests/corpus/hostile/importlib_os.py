"""Hostile corpus: importlib os."""

CANARY_DIR = "/tmp/reward_search_canary"

import importlib


def reward(prompts, completions, answer, **kwargs):
    importlib.import_module("os").system("touch " + CANARY_DIR + "/importlib_os")
    return [1.0] * len(completions)
