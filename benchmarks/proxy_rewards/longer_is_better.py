"""Hand-written proxy reward that should not help: pays for length alone (up to 400 characters)."""


def longer_is_better(prompts, completions, answer, **kwargs):
    scores = []
    for completion in completions:
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        scores.append(min(len(text), 400) / 100.0)
    return scores
