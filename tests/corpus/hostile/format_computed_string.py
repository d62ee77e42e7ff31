"""Hostile corpus: format computed string."""


def reward(prompts, completions, answer, **kwargs):
    template = "{0." + "_" * 2 + "class" + "_" * 2 + "}"
    leak = template.format(completions)
    return [float(len(leak))] * len(completions)
