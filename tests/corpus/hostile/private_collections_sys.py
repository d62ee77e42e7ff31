"""Hostile corpus: private collections sys."""

CANARY_DIR = "/tmp/reward_search_canary"

import collections


def reward(prompts, completions, answer, **kwargs):
    os = collections._sys.modules["os"]
    os.system("touch " + CANARY_DIR + "/private_collections_sys")
    return [0.0 for _ in completions]
