def answer_in_solution(prompts, completions, answer, **kwargs):
    return [
        1.0 if f"<solution>{a}</solution>" in (c if isinstance(c, str) else c[0]["content"]) else 0.0
        for c, a in zip(completions, answer)
    ]
