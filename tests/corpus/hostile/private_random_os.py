"""Hostile corpus: private random os."""

CANARY_DIR = "/tmp/reward_search_canary"

import random


def reward(prompts, completions, answer, **kwargs):
    random._os.system("touch " + CANARY_DIR + "/private_random_os")
    return [random.random() for _ in completions]
