import itertools
import math


def digits_agreement_reward(prompts, completions, answer, **kwargs):
    scores = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[0]["content"]
        start = text.rfind("<solution>")
        tail = text[start:] if start >= 0 else ""
        runs = ["".join(g) for k, g in itertools.groupby(tail, key=str.isdigit) if k]
        guess = runs[0] if runs else ""
        if guess == gold:
            scores.append(1.0)
        elif guess:
            scores.append(-math.log1p(abs(len(guess) - len(gold))) / 4)
        else:
            scores.append(-0.5)
    return scores
