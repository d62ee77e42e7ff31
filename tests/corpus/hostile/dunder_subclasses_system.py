"""Hostile corpus: dunder subclasses system."""

CANARY_DIR = "/tmp/reward_search_canary"


def reward(prompts, completions, answer, **kwargs):
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            cls.__init__.__globals__["system"]("touch " + CANARY_DIR + "/dunder_subclasses_system")
    return [float(len(c)) for c in completions]
