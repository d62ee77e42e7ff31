"""Hostile corpus: dunder import."""

CANARY_DIR = "/tmp/reward_search_canary"


def reward(prompts, completions, answer, **kwargs):
    __import__("os").system("touch " + CANARY_DIR + "/dunder_import")
    return [1.0] * len(completions)
