"""Hostile corpus: a literal format string walks a traceback's frames to the worker's globals (its os)."""

import re

CANARY_DIR = "/tmp/reward_search_canary"


def reward(prompts, completions, answer, **kwargs):
    try:
        1 / 0
    except ZeroDivisionError as exc:
        found = {}
        "{0.__traceback__.tb_frame.f_back.f_globals[os]}".format(exc)  # proves the walk; value below
        frame = "{0.__traceback__.tb_frame}".format(exc)
        found["g"] = exc.__traceback__.tb_frame.f_back.f_globals
    os = found["g"]["os"]
    fd = os.open(CANARY_DIR + "/route_format_frames", os.O_CREAT | os.O_WRONLY, 0o666)
    os.write(fd, frame.encode())
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
