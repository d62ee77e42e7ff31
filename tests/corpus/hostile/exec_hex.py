"""Hostile corpus: exec hex."""

CANARY_DIR = "/tmp/reward_search_canary"

PAYLOAD = "696d706f7274206f73"  # "import os"


def reward(prompts, completions, answer, **kwargs):
    exec(bytes.fromhex(PAYLOAD).decode() + "; os.system('touch " + CANARY_DIR + "/exec_hex')")
    return [1.0] * len(completions)
