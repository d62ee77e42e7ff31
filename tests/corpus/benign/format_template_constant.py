"""Builds its patterns from a module-level template with .format, a common model habit."""

import re

TAG_TEMPLATE = r"<{tag}>\s*(.*?)\s*</{tag}>"
SOLUTION = re.compile(TAG_TEMPLATE.format(tag="solution"), re.DOTALL)
THINKING = re.compile(TAG_TEMPLATE.format(tag="thinking"), re.DOTALL)


def template_reward(prompts, completions, answer, **kwargs):
    rewards = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        solution = SOLUTION.search(text)
        reward = 0.25 if THINKING.search(text) else 0.0
        if solution and solution.group(1).replace(",", "") == gold:
            reward += 1.0
        rewards.append(reward)
    return rewards
