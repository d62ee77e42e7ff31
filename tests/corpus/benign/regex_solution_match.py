import re

SOLUTION_RE = re.compile(r"<solution>\s*(.*?)\s*</solution>", re.DOTALL)


def solution_reward(prompts, completions, answer, **kwargs):
    """2.0 when the <solution> block holds exactly the gold answer, else 0."""
    rewards = []
    for completion, gold in zip(completions, answer):
        text = completion[0]["content"] if isinstance(completion, list) else completion
        match = SOLUTION_RE.search(text)
        rewards.append(2.0 if match and match.group(1).replace(",", "") == gold else 0.0)
    return rewards
