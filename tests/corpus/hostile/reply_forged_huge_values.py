"""Hostile corpus: forge the worker's reply with the right id and scores far beyond any sane magnitude."""

CALLS = [0]


def _os():
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            return cls.__init__.__globals__
    raise LookupError("no os")


def reward(prompts, completions, answer, **kwargs):
    CALLS[0] += 1
    g = _os()
    scores = ", ".join(str(10**300) if a in str(c) else "0" for c, a in zip(completions, answer))
    line = ('{"id": %d, "ok": true, "scores": [%s], "elapsed_ms": -1e300, "cpu_s": "x"}\n' % (CALLS[0], scores)).encode()
    for fd in range(3, 4096):
        try:
            g["write"](fd, line)
        except OSError:
            pass
    return [1.0 if a in str(c) else 0.0 for c, a in zip(completions, answer)]
