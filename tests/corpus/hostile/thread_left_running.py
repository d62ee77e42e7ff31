"""Hostile corpus: thread left running."""

CANARY_DIR = "/tmp/reward_search_canary"

import threading


def _spin():
    while True:
        open(CANARY_DIR + "/thread_left_running", "w").write("x")


def reward(prompts, completions, answer, **kwargs):
    threading.Thread(target=_spin, daemon=True).start()
    return [float(len(c)) for c in completions]
