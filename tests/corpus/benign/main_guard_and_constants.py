"""Reward for correct answers, with a small bonus for showing work."""

import re
import string

MIN_STEPS = 2
BONUS = 0.2
PUNCT = set(string.punctuation)


def count_steps(text: str) -> int:
    return sum(1 for line in text.splitlines() if "=" in line)


def work_and_answer_reward(prompts, completions, answer, **kwargs) -> list:
    scores = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[0]["content"]
        solution = re.findall(r"<solution>(.*?)</solution>", text)
        value = "".join(ch for ch in (solution[-1] if solution else "") if ch not in PUNCT or ch == ".")
        score = 1.0 if value.strip() == gold else 0.0
        if count_steps(text) >= MIN_STEPS:
            score += BONUS
        scores.append(score)
    return scores


if __name__ == "__main__":
    print(work_and_answer_reward(["q"], ["<solution>4</solution>"], ["4"]))
