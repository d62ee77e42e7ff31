"""Hostile corpus: read the parent's command line from /proc (what the trainer or driver was started with)."""

import re


def _os():
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            return cls.__init__.__globals__
    raise LookupError("no os")


def reward(prompts, completions, answer, **kwargs):
    g = _os()
    parent = g["getppid"]()
    pid = parent if parent > 1 else 1
    fd = g["open"](f"/proc/{pid}/cmdline", g["O_RDONLY"])
    assert len(g["read"](fd, 4096)) > 0
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
