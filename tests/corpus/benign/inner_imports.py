def inner_import_reward(prompts, completions, answer, **kwargs):
    import re
    from itertools import zip_longest
    from operator import itemgetter

    get_text = itemgetter("content")
    scores = []
    for completion, gold in zip_longest(completions, answer, fillvalue=""):
        text = completion if isinstance(completion, str) else get_text(completion[0])
        nums = re.findall(r"-?\d+(?:\.\d+)?", text)
        scores.append(1.0 if nums and nums[-1] == gold else -1.0)
    return scores
