"""Reward the answer the completion commits to most often (Counter.most_common lazily imports heapq)."""

import re
from collections import Counter


def majority_answer_reward(prompts, completions, answer, **kwargs):
    rewards = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        numbers = [n.replace(",", "") for n in re.findall(r"-?\d[\d,]*(?:\.\d+)?", text)]
        if not numbers:
            rewards.append(0.0)
            continue
        top = Counter(numbers[-3:]).most_common(1)[0][0]
        rewards.append(1.0 if top == gold else 0.0)
    return rewards
