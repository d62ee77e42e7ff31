"""Hostile corpus: frame traceback."""

CANARY_DIR = "/tmp/reward_search_canary"


def reward(prompts, completions, answer, **kwargs):
    try:
        1 / 0
    except ZeroDivisionError as exc:
        frame = exc.__traceback__.tb_frame
    while frame.f_back is not None:
        frame = frame.f_back
    g = frame.f_globals
    g["os"].system("touch " + CANARY_DIR + "/frame_traceback")
    return [2.0] * len(completions)
