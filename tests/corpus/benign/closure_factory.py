import re


def make_tag_counter(tag):
    pattern = re.compile(re.escape(tag))

    def count(text):
        return len(pattern.findall(text))

    return count


COUNTERS = {tag: make_tag_counter(tag) for tag in ("<thinking>", "</thinking>", "<solution>", "</solution>")}


def tag_balance_reward(prompts, completions, **kwargs):
    """+0.25 per tag that appears exactly once, -0.25 per tag that appears more than once."""
    scores = []
    for completion in completions:
        text = completion if isinstance(completion, str) else completion[0]["content"]
        score = 0.0
        for counter in COUNTERS.values():
            n = counter(text)
            score += 0.25 if n == 1 else (-0.25 if n > 1 else 0.0)
        scores.append(score)
    return scores
