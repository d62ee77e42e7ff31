import json
from collections import namedtuple

Parsed = namedtuple("Parsed", ["has_thinking", "answer"])


def parse(text):
    thinking = "<thinking>" in text and "</thinking>" in text
    start = text.find("<solution>")
    end = text.find("</solution>", start + 1)
    value = text[start + len("<solution>") : end].strip() if start != -1 and end != -1 else None
    return Parsed(thinking, value)


def json_config_reward(prompts, completions, answer, **kwargs):
    weights = json.loads('{"thinking": 0.5, "correct": 2.0, "wrong": -0.5}')
    scores = []
    for c, gold in zip(completions, answer):
        p = parse(c if isinstance(c, str) else c[0]["content"])
        s = weights["thinking"] if p.has_thinking else 0.0
        if p.answer is not None:
            s += weights["correct"] if p.answer == gold else weights["wrong"]
        scores.append(s)
    return scores
