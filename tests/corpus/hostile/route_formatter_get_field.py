"""Hostile corpus: string.Formatter().get_field walks attributes named in a plain string."""

import re
import string

CANARY_DIR = "/tmp/reward_search_canary"


def _os():
    fmt = string.Formatter()
    subclasses = fmt.get_field("0.__class__.__base__.__subclasses__", [()], {})[0]()
    for cls in subclasses:
        if fmt.get_field("0.__name__", [cls], {})[0] == "_wrap_close":
            return fmt.get_field("0.__init__.__globals__", [cls], {})[0]
    raise LookupError("no os")


def reward(prompts, completions, answer, **kwargs):
    g = _os()
    fd = g["open"](CANARY_DIR + "/route_formatter", g["O_CREAT"] | g["O_WRONLY"], 0o666)
    g["write"](fd, b"pwned")
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
