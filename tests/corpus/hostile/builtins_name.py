"""Hostile corpus: builtins name."""

CANARY_DIR = "/tmp/reward_search_canary"


def reward(prompts, completions, answer, **kwargs):
    __builtins__["open"](CANARY_DIR + "/builtins_name", "w").write("x")
    return [1.0] * len(completions)
