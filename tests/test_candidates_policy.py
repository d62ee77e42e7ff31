"""Static policy: allowlist, forbidden names and attributes, format-string fields, reasons naming the line."""

from __future__ import annotations

import pytest

from reward_search.candidates.policy import check_source
from reward_search.candidates.settings import PolicyConfig


def reasons(source: str, config: PolicyConfig | None = None) -> list[str]:
    return check_source(source, config).reasons()


def test_ordinary_code_passes():
    source = """
import re
import functools
from collections import Counter, abc
from typing import List

PATTERN = re.compile(r"\\d+")

class Box:
    def __init__(self, v):
        self._v = v

@functools.lru_cache(maxsize=None)
def helper(x: str) -> int:
    return len(PATTERN.findall(x))

def reward(prompts, completions, answer, **kwargs) -> List[float]:
    try:
        counts = Counter(c for c in completions)
    except (TypeError, ValueError):
        counts = {}
    return [float(helper(c)) + len(f"{c!r:>5}") for c in completions]

if __name__ == "__main__":
    print(reward([], [], []))
"""
    assert reasons(source) == []


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("import os", "line 1: import of 'os' is not allowed"),
        ("import random", "import of 'random'"),
        ("x = 1\nfrom subprocess import run", "line 2: import of 'subprocess'"),
        ("from . import x", "relative imports"),
        ("from re import *", "import *"),
        ("from random import _os", "import of 'random'"),
        ("import collections\ncollections._sys", "line 2: private module attribute `collections._sys`"),
        ("import typing\ntyping.sys", "module re-export `typing.sys`"),
        ("eval('1')", "name `eval`"),
        ("x = getattr", "name `getattr`"),
        ("__import__('os')", "name `__import__`"),
        ("open('f')", "name `open`"),
        ("globals()", "name `globals`"),
        ("().__class__", "dunder attribute `.__class__`"),
        ("f = lambda: 0\nf.__globals__", "line 2: dunder attribute `.__globals__`"),
        ("g = (i for i in [])\ng.gi_frame", "line 2: attribute `.gi_frame`"),
        ("def f(e):\n    return e.tb_frame.f_back", "line 2: attribute `.f_back`"),
        ("x = '{0.__class__}'.format(1)", "format field {0.__class__}"),
        ("x = '{a[_secret]}'", "format field {a[_secret]}"),
        ("t = 'a'\nt.format(1)", "`.format` on a computed string"),
        ("x = f'{(1).__class__}'", "dunder attribute"),
        ("import re\nre.compile = None", "monkeypatching"),
        ("import math\ndel math.pi", "monkeypatching"),
        ("obj = 1\nobj._private", "private attribute `._private`"),
        ("def f(:", "syntax error"),
    ],
)
def test_violations_name_the_line(source, fragment):
    found = reasons(source)
    assert any(fragment in r for r in found), found


def test_allowlist_is_configurable():
    config = PolicyConfig(allowed_imports=("random",))
    assert reasons("import random\nrandom.random()", config) == []
    assert reasons("import re", config)


def test_source_size_limit():
    found = reasons("x = 1\n" * 100, PolicyConfig(max_source_bytes=50))
    assert found and "limit is 50" in found[0]


def test_deep_nesting_is_a_violation_not_a_crash():
    assert reasons("x = " + "(" * 5000 + ")" * 5000)
