"""Hostile corpus: getattr obfuscated."""

CANARY_DIR = "/tmp/reward_search_canary"


def reward(prompts, completions, answer, **kwargs):
    d = "_" * 2
    base = getattr(getattr((), d + "class" + d), d + "base" + d)
    for cls in getattr(base, d + "subclasses" + d)():
        if cls.__name__ == "_wrap_close":
            getattr(getattr(cls, d + "init" + d), d + "globals" + d)["system"]("touch " + CANARY_DIR + "/getattr")
    return [1.0] * len(completions)
