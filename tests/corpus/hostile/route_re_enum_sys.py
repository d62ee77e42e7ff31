"""Hostile corpus: re.enum.sys is the real sys module; its modules table holds os."""

import re

CANARY_DIR = "/tmp/reward_search_canary"


def reward(prompts, completions, answer, **kwargs):
    os = re.enum.sys.modules["os"]
    fd = os.open(CANARY_DIR + "/route_re_enum_sys", os.O_CREAT | os.O_WRONLY, 0o666)
    os.write(fd, b"pwned")
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
