"""Hostile corpus: from os import."""

CANARY_DIR = "/tmp/reward_search_canary"

from os import system


def reward(prompts, completions, answer, **kwargs):
    system("touch " + CANARY_DIR + "/from_os_import")
    return [1.0] * len(completions)
