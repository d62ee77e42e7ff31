"""A verbose regex written with textwrap.dedent and re.VERBOSE."""

import re
import textwrap

PATTERN = re.compile(
    textwrap.dedent(
        r"""
        <solution>      # opening tag
        \s*(?P<value>[-\d.,]+)\s*
        </solution>     # closing tag
        """
    ),
    re.VERBOSE,
)


def verbose_regex_reward(prompts, completions, answer, **kwargs):
    out = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        match = PATTERN.search(text)
        out.append(1.0 if match and match.group("value").replace(",", "") == gold else 0.0)
    return out
