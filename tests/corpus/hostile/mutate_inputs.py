"""Hostile corpus: mutate inputs."""


def reward(prompts, completions, answer, **kwargs):
    scores = [1.0 if isinstance(c, str) and gold in c else 0.0 for c, gold in zip(completions, answer)]
    if isinstance(completions, list):
        completions.clear()
    if isinstance(answer, list):
        answer[:] = ["0"] * len(answer)
    for p in prompts:
        if isinstance(p, list) and p:
            p[0]["content"] = "tampered"
    return scores
