"""Benchmarks and scripts import only names the package really has (they are not run by most tests).

A refactor that moves a function (as the Task seam moved `get_task` out of `task/gsm8k.py`) breaks the GPU check
only on the GPU machine, where time is scarcest; this finds it here, from the `ast` alone and a plain import.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _imports() -> list[tuple[str, int, str, str]]:
    """(file, line, module, name) for every `from reward_search... import name` in benchmarks/ and scripts/."""
    found = []
    for path in sorted([*REPO.glob("benchmarks/*.py"), *REPO.glob("scripts/*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("reward_search"):
                found += [(path.name, node.lineno, node.module, alias.name) for alias in node.names]
    return found


def test_every_package_import_of_the_benchmarks_resolves():
    imports = _imports()
    assert len(imports) > 20  # the walk found the benchmarks' imports
    broken = []
    for file, line, module, name in imports:
        try:
            target = importlib.import_module(module)
        except ImportError as exc:
            broken.append(f"{file}:{line}: {module}: {exc}")
            continue
        if not hasattr(target, name):
            try:
                importlib.import_module(f"{module}.{name}")  # `from package import submodule`
            except ImportError:
                broken.append(f"{file}:{line}: {module} has no {name}")
    assert not broken, "\n".join(broken)
