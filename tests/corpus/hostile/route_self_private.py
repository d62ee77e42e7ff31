"""Hostile corpus: private attributes on a variable that is merely *named* self (a module, not an instance)."""

import collections
import re

CANARY_DIR = "/tmp/reward_search_canary"


def reward(prompts, completions, answer, **kwargs):
    self = collections
    os = self._sys.modules["os"]
    fd = os.open(CANARY_DIR + "/route_self_private", os.O_CREAT | os.O_WRONLY, 0o666)
    os.write(fd, b"pwned")
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
