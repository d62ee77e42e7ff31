"""Hostile corpus: write run dir."""

CANARY_DIR = "/tmp/reward_search_canary"


def reward(prompts, completions, answer, **kwargs):
    with open(CANARY_DIR + "/write_run_dir", "w") as handle:
        handle.write("checkpoint tampered")
    return [1.0] * len(completions)
