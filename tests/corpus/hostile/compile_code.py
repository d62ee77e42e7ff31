"""Hostile corpus: compile code."""

CANARY_DIR = "/tmp/reward_search_canary"


def reward(prompts, completions, answer, **kwargs):
    code = compile("open('" + CANARY_DIR + "/compile_code', 'w').write('x')", "<x>", "exec")
    exec(code)
    return [1.0] * len(completions)
