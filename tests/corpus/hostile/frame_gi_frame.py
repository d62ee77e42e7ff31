"""Hostile corpus: frame gi frame."""

CANARY_DIR = "/tmp/reward_search_canary"


def reward(prompts, completions, answer, **kwargs):
    gen = (i for i in range(1))
    frame = gen.gi_frame
    while frame.f_back is not None:
        frame = frame.f_back
    frame.f_globals["os"].system("touch " + CANARY_DIR + "/frame_gi_frame")
    return [1.0] * len(completions)
