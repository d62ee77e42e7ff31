"""Completing a reward module that uses the prompt example's helpers or imports without copying them.

Small models copy the example's calls (`_text(completion)`, `re.search(...)`) and leave out the helper or the import
they need; the reward then fails its probes with a NameError, and telling the model so rarely helps (measured with
Qwen2.5-Coder-1.5B: 5 of 6 rewards in one round). When a name is used, bound nowhere in the module, and either
defined at the top level of the example or an allowed standard module, its definition is added at the top. Pure
text in, text out; every addition is reported, and the result still goes through the policy, sandbox and probes.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterable

_BUILTINS = frozenset(dir(builtins))
MAX_PASSES = 4  # an added helper may itself need an import


def definitions(example: str) -> dict[str, str]:
    """Name -> source of each private top-level function (a helper) and plain import in the prompt's example."""
    tree = ast.parse(example)
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("_"):
            found[node.name] = ast.get_source_segment(example, node) or ""
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname is None and "." not in alias.name:
                    found[alias.name] = f"import {alias.name}"
    return {name: text for name, text in found.items() if text}


def _bound(tree: ast.AST) -> set[str]:
    """Every name the module binds anywhere: definitions, arguments, imports, assignments, handlers, globals."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            names.update(node.names)
    return names


def missing_names(code: str) -> set[str]:
    """Names the module reads but never binds (builtins excepted). Raises SyntaxError for unparsable code."""
    tree = ast.parse(code)
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return read - _bound(tree) - _BUILTINS


def complete_module(code: str, known: dict[str, str], modules: Iterable[str] = ()) -> tuple[str, list[str]]:
    """`code` with the missing helpers and imports added, and one note per addition.

    `known` maps names to their definitions (see `definitions`); `modules` are standard modules that may be
    imported when used by name (the sandbox policy's allowed imports). Code that does not parse is returned as
    it is: validation reports the syntax error with its line.
    """
    allowed = set(modules)
    imports: list[str] = []
    helpers: list[str] = []
    notes: list[str] = []
    for _ in range(MAX_PASSES):
        try:
            missing = missing_names("\n".join([*imports, *helpers, code]))
        except SyntaxError:
            return code, []
        added = False
        for name in sorted(missing):
            text = known.get(name) or (f"import {name}" if name in allowed else None)
            if text is None:
                continue
            if text.startswith("import "):
                imports.append(text)
                notes.append(f"added the missing `{text}`")
            else:
                helpers.append(text)
                notes.append(f"added the missing helper `{name}` from the prompt's example")
            added = True
        if not added:
            break
    if not notes:
        return code, []
    head = "\n".join(imports)
    parts = [head] if head else []
    parts += helpers
    return "\n\n\n".join([*parts, code.strip("\n")]) + "\n", notes
