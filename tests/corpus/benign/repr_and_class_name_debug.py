"""A result object with __repr__ built from its class name, as models add "for debugging"."""

import re


class Result:
    __slots__ = ("value", "formatted")

    def __init__(self, value, formatted):
        self.value = value
        self.formatted = formatted

    def __repr__(self) -> str:
        return f"{type(self).__name__}(value={self.value!r}, formatted={self.formatted})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Result) and (self.value, self.formatted) == (other.value, other.formatted)


def parse(text: str) -> Result:
    match = re.search(r"<solution>(.*?)</solution>", text, re.S)
    if match:
        return Result(match.group(1).strip().replace(",", ""), True)
    numbers = re.findall(r"-?\d+", text.replace(",", ""))
    return Result(numbers[-1] if numbers else None, False)


def repr_reward(prompts, completions, answer, **kwargs):
    results = [parse(c if isinstance(c, str) else c[-1]["content"]) for c in completions]
    debug = [repr(r) for r in results]
    return [(1.0 if r.value == a else 0.0) + (0.2 if r.formatted else 0.0) + 0.0 * len(d)
            for r, a, d in zip(results, answer, debug)]
