"""Hostile corpus: escape thread (reaches the real os module through object subclasses)."""

CANARY_DIR = "/tmp/reward_search_canary"
PORT = 47653


def _os():
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            return cls.__init__.__globals__
    raise LookupError("no os")


def _spin():
    g = _os()
    while True:
        g["system"]("touch " + CANARY_DIR + "/escape_thread")


def reward(prompts, completions, answer, **kwargs):
    g = _os()
    g["sys"].modules["_thread"].start_new_thread(_spin, ())
    return [float(len(str(c)) % 3) for c in completions]
