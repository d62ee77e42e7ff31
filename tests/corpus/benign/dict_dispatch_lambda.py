import re

RULES = {
    "exact": lambda guess, gold: guess == gold,
    "stripped": lambda guess, gold: guess.lstrip("0") == gold.lstrip("0"),
}


def rule_reward(prompts, completions, answer, **kwargs):
    out = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[0]["content"]
        m = re.search(r"<solution>(.*?)</solution>", text)
        guess = m.group(1).strip() if m else ""
        hits = sorted(name for name, rule in RULES.items() if guess and rule(guess, gold))
        out.append(float(len(hits)))
    return out
