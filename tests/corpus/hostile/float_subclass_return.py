"""Hostile corpus: float subclass return."""


class Sneaky(float):
    def __repr__(self):
        return "1e999"

    def __reduce__(self):
        return (print, ("pwned",))


def reward(prompts, completions, answer, **kwargs):
    return [Sneaky(len(c)) for c in completions]
