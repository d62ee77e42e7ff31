"""The import layering of `reward_search/` (ARCHITECTURE.md, "What may import what"): no cycles, no upward imports.

Every import counts: module level, inside functions (a lazy import hides a cycle, it does not remove it) and under
`if TYPE_CHECKING:`. Importing `a.b.c` also runs the `__init__` of every package on the way that the importer does
not already sit in, so those count too. The base layer is `config.py`, `errors.py`, `io.py`, the package's own
`__init__.py` and every subpackage's `settings.py` (config sections that `config.py` assembles).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "reward_search"

# Lower numbers are lower layers. A module may import its own group and groups on strictly lower layers only.
LAYERS: dict[str, int] = {
    "base": 0,
    "task": 1,
    "candidates": 1,
    "ops": 2,
    "training": 3,
    "proposers": 3,
    "search": 4,
    "analysis": 5,
    "cli": 6,
    "testing": 6,
}
BASE_MODULES = {PACKAGE, f"{PACKAGE}.config", f"{PACKAGE}.errors", f"{PACKAGE}.io"}


def module_files(root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every `.py` file under `root / package`."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]) -> list[str]:
    """The project modules an import statement names (the longest known prefix of each name)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [f"{prefix}.{alias.name}" for alias in node.names]
    targets = []
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name:
            targets.append(name)
    return targets


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(root: Path, package: str = PACKAGE) -> dict[str, set[str]]:
    """Module -> the project modules importing it runs: the modules it names anywhere in the file, and the package
    `__init__`s on the way that it does not sit in (counted when they import something themselves)."""
    files = module_files(root, package)
    known = set(files)
    direct: dict[str, set[str]] = {}
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        nodes = [
            n for n in ast.walk(ast.parse(path.read_text(), str(path))) if isinstance(n, (ast.Import, ast.ImportFrom))
        ]
        direct[module] = {t for node in nodes for t in _targets(module, is_package, node, known)} - {module}
    graph: dict[str, set[str]] = {}
    for module, targets in direct.items():
        inside = set(_ancestors(module)) | ({module} if files[module].name == "__init__.py" else set())
        graph[module] = set(targets)
        for target in targets:
            graph[module].update(a for a in _ancestors(target) if a not in inside and direct.get(a))
    return graph


def group_of(module: str, package: str = PACKAGE) -> str:
    """The layer group of a module: `base`, a subpackage name, or a top-level module's name (e.g. `cli`)."""
    parts = module.split(".")
    if len(parts) == 1 or module in {package, *(f"{package}.{m}" for m in ("config", "errors", "io"))}:
        return "base"
    if len(parts) > 2 and parts[-1] == "settings":
        return "base"
    return parts[1]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path that returns to its start, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            node = next(stack[-1], None)
            if node is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(node) == 1:
                return [*path[path.index(node) :], node]
            elif not state.get(node):
                state[node] = 1
                path.append(node)
                stack.append(iter(sorted(graph.get(node, ()))))
    return None


def group_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = {}
    for module, targets in graph.items():
        mine = groups.setdefault(group_of(module), set())
        mine.update(group_of(t) for t in targets if group_of(t) != group_of(module))
    return groups


def upward_imports(graph: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    """`a -> b` for every import of a group on the same or a higher layer than the importer's (another group)."""
    wrong = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            mine, theirs = group_of(module), group_of(target)
            if mine != theirs and layers[theirs] >= layers[mine]:
                wrong.append(f"{module} ({mine}, layer {layers[mine]}) -> {target} ({theirs}, layer {layers[theirs]})")
    return wrong


def _arrow(cycle: Iterable[str]) -> str:
    return " -> ".join(cycle)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(REPO)


def test_every_group_has_a_layer(graph):
    unknown = sorted({group_of(m) for m in graph} - set(LAYERS))
    assert not unknown, f"new subpackage or top-level module {unknown}: give it a layer in LAYERS and ARCHITECTURE.md"


def test_no_cycle_between_modules(graph):
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle between modules: {_arrow(cycle or [])}"


def test_no_cycle_between_subpackages(graph):
    cycle = find_cycle(group_graph(graph))
    assert cycle is None, f"import cycle between subpackages: {_arrow(cycle or [])}"


def test_imports_only_go_down_the_layers(graph):
    wrong = upward_imports(graph, LAYERS)
    assert not wrong, "imports of a group on the same or a higher layer:\n" + "\n".join(wrong)


def test_the_layers_match_architecture_md():
    text = (REPO / "ARCHITECTURE.md").read_text()
    declared = {}
    for number, names in re.findall(r"^layer (\d+): (.+)$", text, re.M):
        for name in re.findall(r"^[a-z_]+|(?<=, )[a-z_]+", names):
            declared[name] = int(number)
    assert declared == LAYERS


def test_the_walker_sees_lazy_imports_package_inits_and_cycles(tmp_path):
    """The checker on a made-up package: a lazy import inside a function closes a cycle, and is reported."""
    pkg = tmp_path / "pkg"
    for folder in (pkg, pkg / "low", pkg / "high"):
        folder.mkdir()
        (folder / "__init__.py").write_text("")
    (pkg / "high" / "__init__.py").write_text("from pkg.high import top  # noqa\n")
    (pkg / "high" / "top.py").write_text("from ..low import base\n")
    (pkg / "low" / "base.py").write_text("def later():\n    from pkg.high.top import x\n    return x\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.low.base"] == {"pkg.high", "pkg.high.top"}  # the lazy import, and the package it runs
    assert graph["pkg.high"] == {"pkg.high.top"} and graph["pkg.high.top"] == {"pkg.low.base"}  # low/ is empty
    assert find_cycle(graph) == ["pkg.high", "pkg.high.top", "pkg.low.base", "pkg.high"]
    assert upward_imports(graph, {"low": 0, "high": 1}) == [
        "pkg.low.base (low, layer 0) -> pkg.high (high, layer 1)",
        "pkg.low.base (low, layer 0) -> pkg.high.top (high, layer 1)",
    ]
