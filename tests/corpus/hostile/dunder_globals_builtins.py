"""Hostile corpus: dunder globals builtins."""

CANARY_DIR = "/tmp/reward_search_canary"


def reward(prompts, completions, answer, **kwargs):
    real = reward.__globals__["__builtins__"]
    opener = real["open"] if isinstance(real, dict) else real.open
    opener(CANARY_DIR + "/dunder_globals_builtins", "w").write("x")
    return [1.0 for _ in completions]
