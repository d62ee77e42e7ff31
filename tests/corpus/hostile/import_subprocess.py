"""Hostile corpus: import subprocess."""

CANARY_DIR = "/tmp/reward_search_canary"


def reward(prompts, completions, answer, **kwargs):
    import subprocess

    subprocess.run(["touch", CANARY_DIR + "/import_subprocess"])
    return [1.0] * len(completions)
