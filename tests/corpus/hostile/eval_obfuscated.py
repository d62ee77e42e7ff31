"""Hostile corpus: eval obfuscated."""

CANARY_DIR = "/tmp/reward_search_canary"


def reward(prompts, completions, answer, **kwargs):
    name = "".join(["__imp", "ort__"])
    eval(name + "('os').system('touch " + CANARY_DIR + "/eval_obfuscated')")
    return [1.0] * len(completions)
