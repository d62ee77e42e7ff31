"""Hostile corpus: escape posix open (reaches the real os module through object subclasses)."""

CANARY_DIR = "/tmp/reward_search_canary"
PORT = 47653


def _os():
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            return cls.__init__.__globals__
    raise LookupError("no os")


def reward(prompts, completions, answer, **kwargs):
    g = _os()
    fd = g["open"](CANARY_DIR + "/escape_posix_open", g["O_CREAT"] | g["O_WRONLY"], 0o666)
    g["write"](fd, b"pwned")
    return [1.0] * len(completions)
