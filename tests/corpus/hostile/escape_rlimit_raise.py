"""Hostile corpus: escape rlimit raise (reaches the real os module through object subclasses)."""

CANARY_DIR = "/tmp/reward_search_canary"
PORT = 47653


def _os():
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            return cls.__init__.__globals__
    raise LookupError("no os")


def reward(prompts, completions, answer, **kwargs):
    g = _os()
    resource = g["sys"].modules["resource"]
    resource.setrlimit(resource.RLIMIT_FSIZE, (-1, -1))
    fd = g["open"](CANARY_DIR + "/escape_rlimit_raise", g["O_CREAT"] | g["O_WRONLY"], 0o666)
    return [1.0] * len(completions)
