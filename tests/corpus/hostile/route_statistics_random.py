"""Hostile corpus: statistics.random is a re-export (random is not allowlisted): hidden randomness and its os."""

import re
import statistics

CANARY_DIR = "/tmp/reward_search_canary"


def reward(prompts, completions, answer, **kwargs):
    rng = statistics.random
    fd = rng._os.open(CANARY_DIR + "/route_statistics_random", rng._os.O_CREAT | rng._os.O_WRONLY, 0o666)
    rng._os.write(fd, b"pwned")
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [rng.random() + (1.0 if a in t else 0.0) for t, a in zip(texts, answer)]
