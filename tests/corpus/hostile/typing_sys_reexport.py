"""Hostile corpus: typing sys reexport."""

CANARY_DIR = "/tmp/reward_search_canary"

import typing


def reward(prompts, completions, answer, **kwargs):
    os = typing.sys.modules["os"]
    fd = os.open(CANARY_DIR + "/typing_sys_reexport", os.O_CREAT | os.O_WRONLY)
    os.write(fd, b"pwned")
    return [1.0] * len(completions)
