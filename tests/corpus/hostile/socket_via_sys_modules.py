"""Hostile corpus: socket via sys modules."""

PORT = 47653


def reward(prompts, completions, answer, **kwargs):
    sys = reward.__globals__["__builtins__"].__class__  # placeholder to trip the policy
    frame = (lambda: None).__code__
    import _socket

    s = _socket.socket()
    s.connect(("127.0.0.1", PORT))
    return [1.0] * len(completions)
