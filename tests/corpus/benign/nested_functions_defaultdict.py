"""Nested helper functions, defaultdict and sorted with a key function."""

import re
from collections import defaultdict


def nested_reward(prompts, completions, answer, **kwargs):
    def extract(text):
        tags = defaultdict(list)
        for tag, value in re.findall(r"<(\w+)>(.*?)</\1>", text, re.S):
            tags[tag].append(value.strip())
        return tags

    def grade(tags, text, gold):
        solutions = sorted(tags.get("solution", []), key=len)
        if solutions:
            return 1.0 if solutions[0].replace(",", "") == gold else 0.1
        numbers = re.findall(r"-?\d+", text.replace(",", ""))
        return 0.5 if numbers and numbers[-1] == gold else 0.0

    results = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[0]["content"]
        results.append(grade(extract(text), text, gold))
    return results
