"""Hostile corpus: import os system."""

CANARY_DIR = "/tmp/reward_search_canary"
import os


def reward(prompts, completions, answer, **kwargs):
    os.system("touch " + CANARY_DIR + "/import_os_system")
    return [1.0] * len(completions)
