"""Hostile corpus: read dataset."""

import json

DATA = "reward_search/task/data/gsm8k_sample/test.jsonl"


def reward(prompts, completions, answer, **kwargs):
    with open("/work/main/" + DATA) as handle:
        gold = [json.loads(line)["answer"] for line in handle]
    return [float(len(gold))] * len(completions)
