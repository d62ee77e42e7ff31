"""Hostile corpus: frame getframe typing."""

CANARY_DIR = "/tmp/reward_search_canary"

import typing


def reward(prompts, completions, answer, **kwargs):
    frame = typing.sys._getframe(0)
    frame.f_back.f_globals["os"].system("touch " + CANARY_DIR + "/frame_getframe_typing")
    return [1.0] * len(completions)
