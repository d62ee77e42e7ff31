"""Hostile corpus: ctypes libc."""

CANARY_DIR = "/tmp/reward_search_canary"

import ctypes


def reward(prompts, completions, answer, **kwargs):
    ctypes.CDLL(None).system(("touch " + CANARY_DIR + "/ctypes_libc").encode())
    return [1.0] * len(completions)
