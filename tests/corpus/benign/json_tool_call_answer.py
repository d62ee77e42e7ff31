"""Models sometimes answer in JSON; parse it when present, else fall back to the last number."""

import json
import re


def parse_answer(text):
    block = re.search(r"\{.*\}", text, re.S)
    if block:
        try:
            data = json.loads(block.group(0))
            if isinstance(data, dict) and "answer" in data:
                return str(data["answer"]).replace(",", "")
        except json.JSONDecodeError:
            pass
    numbers = re.findall(r"-?\d+(?:\.\d+)?", text.replace(",", ""))
    return numbers[-1] if numbers else None


def json_answer_reward(prompts, completions, answer, **kwargs):
    texts = [c if isinstance(c, str) else c[0]["content"] for c in completions]
    return [1.0 if parse_answer(t) == a else 0.0 for t, a in zip(texts, answer)]
