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
        ("x = getattr", "`getattr` only as a direct call"),
        ("getattr(1, 'real' + '')", "`getattr` with a computed name"),
        ("getattr(1, '__class__')", "reaches `__class__`"),
        ("__import__('os')", "name `__import__`"),
        ("open('f')", "name `open`"),
        ("globals()", "name `globals`"),
        ("().__class__.__base__", "dunder attribute `.__base__`"),
        ("f = lambda: 0\nf.__globals__", "line 2: dunder attribute `.__globals__`"),
        ("g = (i for i in [])\ng.gi_frame", "line 2: attribute `.gi_frame`"),
        ("def f(e):\n    return e.tb_frame.f_back", "line 2: attribute `.f_back`"),
        ("x = '{0.__class__}'.format(1)", "format field {0.__class__}"),
        ("x = '{a[_secret]}'", "format field {a[_secret]}"),
        ("def f(t):\n    return t.format(1)", "`.format` on a computed string"),
        ("T = 'a'\nT = T + '{}'\nT.format(1)", "`.format` on a computed string"),
        ("x = f'{(1).__class__.__mro__}'", "dunder attribute `.__mro__`"),
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


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        (
            "from operator import attrgetter\nattrgetter('__class__')(1)",
            "`attrgetter('__class__')` reaches `__class__`",
        ),
        ("import operator\noperator.attrgetter('codecs.builtins')", "reaches `codecs`"),
        ("from operator import methodcaller\nmethodcaller('_private')", "`methodcaller('_private')`"),
        ("from operator import attrgetter\nname = 'x'\nattrgetter(name)", "computed name"),
        ("import string\nstring.Formatter().get_field('0', [1], {})", "`.Formatter` is not allowed"),
        ("import typing\ntyping.get_type_hints(f)", "`.get_type_hints` is not allowed"),
        ("import typing\ntyping.ForwardRef('x')", "`.ForwardRef` is not allowed"),
        ("def f(x: '().__class__.__base__'):\n    pass", "line 1: dunder attribute `.__base__`"),
        ("def f() -> 'eval(1)':\n    pass", "name `eval`"),
        ("x: 'not valid ('", "string annotation"),
        ("import json\njson.codecs.builtins", "module re-export `json.codecs.builtins`"),
        ("import typing\ntyping.contextlib.os", "module re-export `typing.contextlib.os`"),
        ("import re\nre.enum.sys", "module re-export `re.enum.sys`"),
        ("from operator import attrgetter as ag\nag('x')", "`attrgetter` under another name"),
        ("from operator import attrgetter\nlist(map(attrgetter, ['__class__']))", "`attrgetter` only as a direct call"),
        ("import operator\nf = operator.methodcaller", "`methodcaller` only as a direct call"),
        ("import typing\ndef f(m):\n    return m.contextlib.os\nf(typing)", "line 4: the module `typing` used as"),
        ("import json\nmods = [json]", "the module `json` used as a value"),
        ("import statistics\nstatistics.random", "module re-export `statistics.random`"),
        ("from json import codecs", "module re-export `json.codecs`"),
        ("import collections\nself = collections\nself._sys", "binding the module `collections`"),
        ("def f(self):\n    return self._sys", "private attribute `._sys`"),
        ("def f(e):\n    return '{0.tb_frame}'.format(e)", "format field {0.tb_frame}"),
    ],
)
def test_string_routes_and_reexports_rejected(source, fragment):
    found = reasons(source)
    assert any(fragment in r for r in found), found


def test_idioms_models_write_are_accepted():
    source = """
from __future__ import annotations
import re
from collections import Counter
from decimal import Decimal
from functools import reduce
from itertools import groupby
from operator import attrgetter, itemgetter, methodcaller
from typing import Optional

class Scorer:
    _cache: dict = {}

    def __init__(self) -> None:
        self._seen = 0

    def _bump(self) -> int:
        self._seen += 1
        return self._seen

def parse(text: str) -> Optional["Decimal"]:
    if (m := re.search(r"\\d+", text)) is not None:
        return Decimal(m.group(0))
    return None

def reward(prompts, completions, answer, **kwargs) -> list[float]:
    top = Counter(completions).most_common(1)
    keys = sorted(completions, key=attrgetter("real") if False else len)
    groups = [k for k, _ in groupby(keys, key=len)]
    total = reduce(lambda a, b: a + b, map(len, completions), 0)
    upper = list(map(methodcaller("upper"), completions))
    match top:
        case [(value, count)]:
            pass
        case _:
            pass
    return [float(itemgetter(0)(t) == a) for t, a in zip(completions, answer)]

if __name__ == "__main__":
    print(reward([], ["a"], ["a"]))
"""
    assert reasons(source) == []
