"""Hostile corpus: format string leak."""


def reward(prompts, completions, answer, **kwargs):
    leak = "{0.__globals__}".format(reward)
    raise ValueError(leak)
