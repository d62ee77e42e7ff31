"""Static AST policy for candidate rewards: the first filter, with reasons that name the line.

It rejects what ordinary reward code never needs (imports outside an allowlist, introspection builtins, dunder
and private attribute access, frame/code/generator internals, format strings that reach into attributes). It is
deliberately not the boundary: the sandbox must hold even for code that slips past it.
"""

from __future__ import annotations

import ast
import string
from dataclasses import dataclass

from reward_search.candidates.settings import PolicyConfig

FORBIDDEN_NAMES: frozenset[str] = frozenset(
    {
        "eval", "exec", "compile", "open", "__import__", "globals", "locals", "vars", "dir",
        "getattr", "setattr", "delattr", "hasattr", "input", "breakpoint", "exit", "quit", "help",
        "memoryview", "object", "type", "super", "classmethod", "staticmethod", "property", "copyright",
        "credits", "license", "__builtins__", "__loader__", "__spec__", "__file__", "__build_class__",
    }
)  # fmt: skip
ALLOWED_DUNDER_NAMES: frozenset[str] = frozenset({"__name__", "__doc__"})
# Interpreter internals reachable through plain (non-dunder) attribute names.
FORBIDDEN_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "gi_frame", "gi_code", "gi_yieldfrom", "gi_running", "gi_suspended",
        "cr_frame", "cr_code", "cr_await", "cr_origin", "cr_running",
        "ag_frame", "ag_code", "ag_await", "ag_running",
        "f_back", "f_globals", "f_locals", "f_builtins", "f_code", "f_trace", "f_lasti", "f_lineno",
        "tb_frame", "tb_next", "tb_lasti", "tb_lineno",
        "co_code", "co_consts", "co_names", "co_varnames", "co_filename",
        "func_globals", "func_code", "format_map", "mro", "register", "modules",
    }
)  # fmt: skip
_SELF_NAMES = frozenset({"self", "cls"})
_FORMATTER = string.Formatter()


@dataclass(frozen=True)
class Violation:
    """One policy finding at a source line (0 when it concerns the whole file)."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True)
class PolicyReport:
    violations: tuple[Violation, ...]

    @property
    def ok(self) -> bool:
        return not self.violations

    def reasons(self) -> list[str]:
        return [str(v) for v in self.violations]


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _format_fields(text: str) -> list[str]:
    try:
        return [field for _, field, _, _ in _FORMATTER.parse(text) if field]
    except ValueError:
        return []


def _field_reaches_private(field: str) -> bool:
    """Whether a format field like `0.__class__` or `x[_y]` walks into an underscore-prefixed attribute."""
    for separator in (".", "["):
        for part in field.split(separator)[1:]:
            if part.lstrip().startswith("_"):
                return True
    return False


class _Checker(ast.NodeVisitor):
    def __init__(self, config: PolicyConfig) -> None:
        self.allowed = frozenset(config.allowed_imports)
        self.violations: list[Violation] = []
        self.module_aliases: set[str] = set()

    def flag(self, node: ast.AST, message: str) -> None:
        self.violations.append(Violation(getattr(node, "lineno", 0), message))

    def _check_module(self, node: ast.AST, dotted: str) -> bool:
        parts = dotted.split(".")
        if parts[0] not in self.allowed:
            self.flag(node, f"import of {dotted!r} is not allowed (allowed: {', '.join(sorted(self.allowed))})")
            return False
        if any(p.startswith("_") for p in parts):
            self.flag(node, f"import of private module {dotted!r} is not allowed")
            return False
        return True

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if self._check_module(node, alias.name):
                self.module_aliases.add(alias.asname or alias.name.split(".")[0])
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.flag(node, "relative imports are not allowed")
        elif node.module is not None and self._check_module(node, node.module):
            for alias in node.names:
                if alias.name == "*":
                    self.flag(node, f"`from {node.module} import *` is not allowed; import names explicitly")
                elif alias.name.startswith("_"):
                    self.flag(node, f"import of private name {alias.name!r} from {node.module!r} is not allowed")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in FORBIDDEN_NAMES:
            self.flag(node, f"name `{node.id}` is not allowed")
        elif _is_dunder(node.id) and node.id not in ALLOWED_DUNDER_NAMES:
            self.flag(node, f"dunder name `{node.id}` is not allowed")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        receiver_name = node.value.id if isinstance(node.value, ast.Name) else None
        if isinstance(node.ctx, ast.Store | ast.Del) and receiver_name in self.module_aliases:
            self.flag(node, f"changing module attribute `{receiver_name}.{attr}` (monkeypatching) is not allowed")
        elif _is_dunder(attr) or attr.startswith("__"):
            self.flag(node, f"dunder attribute `.{attr}` is not allowed")
        elif attr in FORBIDDEN_ATTRIBUTES:
            self.flag(node, f"attribute `.{attr}` (interpreter internals) is not allowed")
        elif attr.startswith("_"):
            receiver = receiver_name
            if receiver in self.module_aliases:
                self.flag(node, f"private module attribute `{receiver}.{attr}` is not allowed")
            elif receiver not in _SELF_NAMES:
                self.flag(node, f"private attribute `.{attr}` is not allowed (only on self/cls)")
        elif isinstance(node.value, ast.Name) and node.value.id in self.module_aliases and attr in {"sys", "os"}:
            self.flag(node, f"module re-export `{node.value.id}.{attr}` is not allowed")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and "{" in node.value:
            for field in _format_fields(node.value):
                if _field_reaches_private(field) or _is_dunder(field.split(".")[0].split("[")[0]):
                    self.flag(node, f"format field {{{field}}} reaches into a private or dunder attribute")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "format" and not isinstance(func.value, ast.Constant):
            if not (isinstance(func.value, ast.Name) and func.value.id in self.module_aliases):
                self.flag(node, "`.format` on a computed string is not allowed; use a literal or an f-string")
        self.generic_visit(node)


def _module_aliases(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.asname or a.name.split(".")[0] for a in node.names)
    return names


def check_source(source: str, config: PolicyConfig | None = None) -> PolicyReport:
    """All policy violations in `source` (an empty report means it passed this filter)."""
    config = config or PolicyConfig()
    size = len(source.encode("utf-8", errors="replace"))
    if size > config.max_source_bytes:
        return PolicyReport((Violation(0, f"source is {size} bytes; the limit is {config.max_source_bytes}"),))
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return PolicyReport((Violation(exc.lineno or 0, f"syntax error: {exc.msg}"),))
    except (RecursionError, MemoryError, ValueError) as exc:
        return PolicyReport((Violation(0, f"source cannot be parsed: {type(exc).__name__}"),))
    checker = _Checker(config)
    checker.module_aliases = _module_aliases(tree)  # known up front so use-before-import order does not matter
    try:
        checker.visit(tree)
    except RecursionError:
        return PolicyReport((Violation(0, "source is nested too deeply"),))
    return PolicyReport(tuple(sorted(checker.violations, key=lambda v: v.line)))
