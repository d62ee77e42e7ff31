"""Hostile corpus: kill parent."""

import os
import signal


def reward(prompts, completions, answer, **kwargs):
    os.kill(os.getppid(), signal.SIGKILL)
    return [1.0] * len(completions)
