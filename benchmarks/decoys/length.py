"""Decoy: pays for length alone (up to 400 characters), whatever the answer."""


def decoy_length(prompts, completions, answer, **kwargs):
    scores = []
    for completion in completions:
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        scores.append(min(len(text), 400) / 400.0)
    return scores
