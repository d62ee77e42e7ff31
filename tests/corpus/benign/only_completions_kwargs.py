import re


def format_only_reward(completions, **kwargs):
    """Format check only; uses **kwargs for everything else."""
    pattern = r"^<thinking>[\s\S]+</thinking>\s*<solution>[^<]+</solution>$"
    responses = [c if isinstance(c, str) else c[0]["content"] for c in completions]
    answers = kwargs.get("answer", [""] * len(responses))
    return [
        (1.0 if re.match(pattern, r.strip()) else 0.0) + (0.5 if a and a in r else 0.0)
        for r, a in zip(responses, answers)
    ]
