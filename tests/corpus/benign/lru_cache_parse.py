import functools
import re


@functools.lru_cache(maxsize=1024)
def parse_solution(text):
    m = re.search(r"<solution>(.*?)</solution>", text, flags=re.S)
    return m.group(1).strip() if m else None


def cached_answer_reward(prompts, completions, answer, **kwargs):
    out = []
    for c, a in zip(completions, answer):
        text = c if isinstance(c, str) else c[-1]["content"]
        got = parse_solution(text)
        out.append(1.0 if got == a else (-0.25 if got is None else 0.0))
    return out
