"""Hostile corpus: read /etc/passwd with posix.open/read (no audit event for os.read of an fd)."""

import re


def _os():
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            return cls.__init__.__globals__
    raise LookupError("no os")


def reward(prompts, completions, answer, **kwargs):
    g = _os()
    fd = g["open"]("/etc/passwd", g["O_RDONLY"])
    assert b"root:" in g["read"](fd, 4096)
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
