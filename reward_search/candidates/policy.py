"""Static AST policy for candidate rewards: a lint with reasons that name the line, not the boundary.

It rejects what ordinary reward code never needs (imports outside an allowlist, evaluation builtins, dunder and
private attribute access, frame/code/generator internals, strings turned into attribute access) and gives the
proposer a reason it can act on. It is deliberately not the boundary: known routes past it remain (a private name
the candidate defines is allowed on any receiver; the pre-loaded `ctypes` is reachable once past it), and the OS
layers hold for code that slips past it in every environment SANDBOX.md lists.
"""

from __future__ import annotations

import ast
import importlib
import string
import sys
import types
from dataclasses import dataclass

from reward_search.candidates.escape import shown
from reward_search.candidates.settings import PolicyConfig

FORBIDDEN_NAMES: frozenset[str] = frozenset(
    {
        "eval", "exec", "compile", "open", "__import__", "globals", "locals", "vars", "dir",
        "setattr", "delattr", "input", "breakpoint", "exit", "quit", "help",
        "memoryview", "copyright", "credits", "license", "__builtins__", "__loader__", "__spec__", "__file__",
        "__build_class__",
    }
)  # fmt: skip
ALLOWED_DUNDER_NAMES: frozenset[str] = frozenset({"__name__", "__doc__", "__all__", "__slots__", "__version__"})
# Dunder attributes ordinary code uses (`super().__init__(...)`, `self.__class__.__name__`); any further step from
# them into internals (`__class__.__base__`, `__init__.__globals__`) is itself a dunder attribute and refused.
ALLOWED_DUNDER_ATTRIBUTES: frozenset[str] = frozenset(
    {"__init__", "__class__", "__name__", "__qualname__", "__doc__", "__module__", "__post_init__"}
)
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
# Callables that turn a plain string into attribute access or evaluation: only called directly, by their own name,
# with literal strings that are checked (no alias, no passing them as values, e.g. to `map`).
_STRING_ACCESSORS = frozenset({"attrgetter", "methodcaller", "getattr", "hasattr"})
_EVALUATING_NAMES = frozenset({"Formatter", "get_field", "get_value", "vformat", "ForwardRef", "get_type_hints"})
_MODULE_NAMES = frozenset(sys.stdlib_module_names) | {"builtins", "os", "sys", "posix", "nt"}
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
    """Whether a format field like `0.__class__`, `x[_y]` or `0.tb_frame` walks into private or internal attributes."""
    for separator in (".", "["):
        for part in field.split(separator)[1:]:
            name = part.strip().rstrip("]")
            if name.startswith("_") or name in FORBIDDEN_ATTRIBUTES or name in _MODULE_NAMES:
                return True
    return False


def _unsafe_path(text: str) -> str | None:
    """The first dotted part of an attrgetter/methodcaller string that is private, internal or a module name."""
    for part in text.split("."):
        if part.startswith("_") or part in FORBIDDEN_ATTRIBUTES or part in _MODULE_NAMES or part in FORBIDDEN_NAMES:
            return part
    return None


def _resolve(module_name: str, attrs: list[str], allowed: frozenset[str]) -> object | None:
    """The object `module.attr1.attr2...` in this (trusted) process, or None; only allowlisted modules are
    imported here (never a name from the candidate that is not on the list: `antigravity` opens a browser)."""
    parts = module_name.split(".")
    if parts[0] not in allowed or any(p.startswith("_") for p in parts):
        return None
    try:
        value: object = importlib.import_module(module_name)
    except ImportError:
        return None
    for attr in attrs:
        if attr.startswith("_"):
            return None
        try:
            value = getattr(value, attr)
        except AttributeError:
            return None
    return value


class _Checker(ast.NodeVisitor):
    def __init__(self, config: PolicyConfig) -> None:
        self.allowed = frozenset(config.allowed_imports)
        self.violations: list[Violation] = []
        self.modules: dict[str, str] = {}  # local name -> the module it is bound to by an import
        self.own_private: frozenset[str] = frozenset()  # `_names` the candidate defines itself
        self.templates: frozenset[str] = frozenset()  # module constants bound once to a literal string
        self._called: set[int] = set()  # ids of nodes in call position (`f` in `f(...)`)
        self._receivers: set[int] = set()  # ids of nodes whose attribute is taken (`m` in `m.x`)

    def flag(self, node: ast.AST, message: str) -> None:
        violation = Violation(getattr(node, "lineno", 0), shown(message))  # quotes the candidate's text
        if violation not in self.violations:
            self.violations.append(violation)

    def _allowed_module(self, dotted: str) -> bool:
        parts = dotted.split(".")
        return parts[0] in self.allowed and not any(p.startswith("_") for p in parts)

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
            self._check_module(node, alias.name)
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module == "__future__" and not node.level:
            return  # compiler directives (`annotations`), not a module the candidate can use
        if node.level:
            self.flag(node, "relative imports are not allowed")
        elif node.module is not None and self._check_module(node, node.module):
            for alias in node.names:
                if alias.name == "*":
                    self.flag(node, f"`from {node.module} import *` is not allowed; import names explicitly")
                elif alias.name.startswith("_"):
                    self.flag(node, f"import of private name {alias.name!r} from {node.module!r} is not allowed")
                elif alias.name in _STRING_ACCESSORS and alias.asname not in (None, alias.name):
                    self.flag(node, f"`{alias.name}` under another name is not allowed; import it as itself")
                else:
                    self._check_reexport(node, node.module, [alias.name])
        self.generic_visit(node)

    def _check_reexport(self, node: ast.AST, module: str, attrs: list[str]) -> None:
        """`module.a.b` must not be a module outside the allowlist (json.codecs, typing.contextlib.os, ...)."""
        value = _resolve(module, attrs, self.allowed)
        if isinstance(value, types.ModuleType) and not self._allowed_module(value.__name__):
            shown = ".".join([module, *attrs])
            self.flag(node, f"module re-export `{shown}` (the module {value.__name__!r} is not allowed)")

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in FORBIDDEN_NAMES:
            self.flag(node, f"name `{node.id}` is not allowed")
        elif _is_dunder(node.id) and node.id not in ALLOWED_DUNDER_NAMES:
            self.flag(node, f"dunder name `{node.id}` is not allowed")
        elif node.id in _EVALUATING_NAMES:
            self.flag(node, f"`{node.id}` is not allowed (it turns strings into attribute access or evaluation)")
        elif node.id in _STRING_ACCESSORS and id(node) not in self._called:
            self.flag(node, f"`{node.id}` only as a direct call with literal names (not as a value or an alias)")
        elif node.id in self.modules and isinstance(node.ctx, ast.Load) and id(node) not in self._receivers:
            self.flag(node, f"the module `{node.id}` used as a value is not allowed; use its attributes directly")
        self.generic_visit(node)

    def _chain(self, node: ast.Attribute) -> tuple[str, list[str]] | None:
        """For `alias.a.b` where alias names an imported module: (module, [a, b])."""
        attrs: list[str] = []
        current: ast.AST = node
        while isinstance(current, ast.Attribute):
            attrs.append(current.attr)
            current = current.value
        if isinstance(current, ast.Name) and current.id in self.modules:
            return self.modules[current.id], attrs[::-1]
        return None

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        receiver_name = node.value.id if isinstance(node.value, ast.Name) else None
        chain = self._chain(node)
        self._receivers.add(id(node.value))
        if isinstance(node.ctx, ast.Store | ast.Del) and receiver_name in self.modules:
            self.flag(node, f"changing module attribute `{receiver_name}.{attr}` (monkeypatching) is not allowed")
        elif attr in ALLOWED_DUNDER_ATTRIBUTES:
            pass
        elif _is_dunder(attr) or attr.startswith("__"):
            self.flag(node, f"dunder attribute `.{attr}` is not allowed")
        elif attr in FORBIDDEN_ATTRIBUTES:
            self.flag(node, f"attribute `.{attr}` (interpreter internals) is not allowed")
        elif attr in _EVALUATING_NAMES:
            self.flag(node, f"`.{attr}` is not allowed (it turns strings into attribute access or evaluation)")
        elif attr.startswith("_"):
            if chain is not None:
                self.flag(node, f"private module attribute `{receiver_name}.{attr}` is not allowed")
            elif attr not in self.own_private:
                self.flag(node, f"private attribute `.{attr}` is not allowed (only `_names` this code defines)")
        elif chain is not None:
            if attr in _STRING_ACCESSORS and id(node) not in self._called:
                self.flag(node, f"`{attr}` only as a direct call with literal names (not as a value or an alias)")
            self._check_reexport(node, *chain)
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        if isinstance(node.value, ast.Name) and node.value.id in self.modules:
            self.flag(node, f"binding the module `{node.value.id}` to another name is not allowed; use it directly")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and "{" in node.value:
            for field in _format_fields(node.value):
                if _field_reaches_private(field) or _is_dunder(field.split(".")[0].split("[")[0]):
                    self.flag(node, f"format field {{{field}}} reaches into a private or internal attribute")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        self._called.add(id(func))
        if isinstance(func, ast.Attribute) and func.attr == "format" and not isinstance(func.value, ast.Constant):
            receiver = func.value.id if isinstance(func.value, ast.Name) else None
            template = receiver in self.modules or receiver in self.templates
            if not template:
                self.flag(node, "`.format` on a computed string is not allowed; use a literal or an f-string")
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name in _STRING_ACCESSORS:
            self._check_accessor(node, name)
        self.generic_visit(node)

    def _check_accessor(self, node: ast.Call, name: str) -> None:
        texts = {"attrgetter": node.args, "methodcaller": node.args[:1]}.get(name, node.args[1:2])
        if not texts or (node.keywords and name == "attrgetter"):
            self.flag(node, f"`{name}` needs literal attribute names")
        for arg in texts:
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                self.flag(node, f"`{name}` with a computed name is not allowed; use a literal")
            elif (part := _unsafe_path(arg.value)) is not None:
                self.flag(node, f"`{name}({arg.value!r})` reaches `{part}` (private, internal or a module)")

    # -- annotations written as strings are code too (typing.get_type_hints evaluates them)
    def _check_annotation(self, annotation: ast.AST | None) -> None:
        if annotation is None:
            return
        for node in ast.walk(annotation):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                try:
                    parsed = ast.parse(node.value.strip(), mode="eval")
                except SyntaxError:
                    self.flag(node, f"string annotation {node.value[:40]!r} is not a valid expression")
                    continue
                for inner in ast.walk(parsed):
                    ast.copy_location(inner, node)
                self.visit(parsed)

    def visit_arg(self, node: ast.arg) -> None:
        self._check_annotation(node.annotation)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._check_annotation(node.returns)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_annotation(node.annotation)
        self.generic_visit(node)


def _module_bindings(tree: ast.AST, allowed: frozenset[str]) -> dict[str, str]:
    """Every local name an import binds to a module (`import a.b` binds a; `from a import b` binds b if a module)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                names[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level and node.module != "__future__":
            for a in node.names:
                if isinstance(_resolve(node.module, [a.name], allowed), types.ModuleType):
                    names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def _own_private_names(tree: ast.AST) -> frozenset[str]:
    """`_names` the candidate defines: assigned as attributes (`self._x = ...`) or in a class body."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and node.attr.startswith("_"):
            names.add(node.attr)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                targets = item.targets if isinstance(item, ast.Assign) else []
                if isinstance(item, ast.AnnAssign | ast.AugAssign):
                    targets = [item.target]
                names.update(t.id for t in targets if isinstance(t, ast.Name))
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(item.name)
    return frozenset(n for n in names if n.startswith("_") and not n.startswith("__"))


def _module_templates(tree: ast.Module) -> frozenset[str]:
    """Module-level names bound exactly once, to a literal string, and never rebound (`TEMPLATE = "{x} ..."`):
    `.format` on them is `.format` on a literal, whose fields `visit_Constant` checks."""
    stores: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            stores[node.id] = stores.get(node.id, 0) + 1
        elif isinstance(node, ast.Global | ast.Nonlocal):
            for name in node.names:
                stores[name] = stores.get(name, 0) + 2
    names = set()
    for item in tree.body:
        if isinstance(item, ast.Assign | ast.AnnAssign) and isinstance(item.value, ast.Constant):
            targets = item.targets if isinstance(item, ast.Assign) else [item.target]
            if len(targets) == 1 and isinstance(targets[0], ast.Name) and isinstance(item.value.value, str):
                names.add(targets[0].id)
    return frozenset(name for name in names if stores.get(name) == 1)


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
    checker.modules = _module_bindings(
        tree, checker.allowed
    )  # known up front so use-before-import order does not matter
    checker.own_private = _own_private_names(tree)
    checker.templates = _module_templates(tree)
    try:
        checker.visit(tree)
    except RecursionError:
        return PolicyReport((Violation(0, "source is nested too deeply"),))
    return PolicyReport(tuple(sorted(checker.violations, key=lambda v: v.line)))
