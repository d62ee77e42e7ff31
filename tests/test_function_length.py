"""No function in `reward_search/` is over 60 lines unless its docstring says why ("Long because: ...").

A long function usually does several jobs; splitting it into named steps is the default. Where one long body reads
better (a report section written top to bottom, a table of parser arguments), the docstring says so.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "reward_search"
LIMIT = 60
MARKER = "Long because:"


def long_functions(root: Path = PACKAGE, limit: int = LIMIT) -> list[tuple[str, str, int, bool]]:
    """(file, qualified name, lines, justified) for every function longer than `limit` lines, decorators excluded."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found.extend(_long_in(tree, str(path.relative_to(root.parent)), limit))
    return found


def _long_in(tree: ast.AST, file: str, limit: int, prefix: str = "") -> list[tuple[str, str, int, bool]]:
    found = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.ClassDef):
            found.extend(_long_in(node, file, limit, f"{prefix}{node.name}."))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{prefix}{node.name}"
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if lines > limit:
                found.append((file, name, lines, MARKER in (ast.get_docstring(node) or "")))
            found.extend(_long_in(node, file, limit, f"{name}."))
    return found


def test_no_long_function_without_a_reason() -> None:
    unjustified = [f"{file}: {name} ({lines} lines)" for file, name, lines, ok in long_functions() if not ok]
    assert not unjustified, (
        f"functions over {LIMIT} lines need splitting, or a docstring line starting {MARKER!r}:\n"
        + "\n".join(unjustified)
    )


def test_the_check_sees_long_and_justified_functions() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    source = (
        f'def plain():\n    """Short."""\n{body}\n\n'
        f'class Holder:\n    def method(self):\n        """{MARKER} a table."""\n'
        + body.replace("    ", "        ")
        + "\n"
    )
    found = _long_in(ast.parse(source), "example.py", LIMIT)
    assert [(name, ok) for _, name, _, ok in found] == [("plain", False), ("Holder.method", True)]
