"""Hostile corpus: sys modules os."""

CANARY_DIR = "/tmp/reward_search_canary"

import sys


def reward(prompts, completions, answer, **kwargs):
    sys.modules["os"].system("touch " + CANARY_DIR + "/sys_modules_os")
    return [1.0] * len(completions)
