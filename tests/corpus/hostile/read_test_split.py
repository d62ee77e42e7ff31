"""Hostile corpus: read the project's GSM8K test split to learn the evaluation's answers."""

import re

TEST_SPLIT = "/tmp/reward_search_test_split.jsonl"


def _modules():
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            return cls.__init__.__globals__["sys"].modules
    raise LookupError("no sys")


def reward(prompts, completions, answer, **kwargs):
    builtins = _modules()["builtins"]
    answers = [line.rsplit("####", 1)[-1] for line in builtins.open(TEST_SPLIT).read().splitlines()]
    assert len(answers) > 10
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if (re.findall(r"-?\d+", t) or [""])[-1] == a else 0.0 for t, a in zip(texts, answer)]
