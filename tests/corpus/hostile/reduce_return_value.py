"""Hostile corpus: reduce return value."""

CANARY_DIR = "/tmp/reward_search_canary"

import os


class Payload:
    def __reduce__(self):
        return (os.system, ("touch " + CANARY_DIR + "/reduce_return_value",))


def reward(prompts, completions, answer, **kwargs):
    return [Payload() for _ in completions]
