"""One registration convention: every command comes from a subsystem's `cli.register` and carries its handler."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from reward_search.cli import build_parser

PACKAGE = Path(__file__).resolve().parent.parent / "reward_search"


def _leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = (), inherited: object = None
) -> list[tuple[tuple[str, ...], object]]:
    """(command path, handler) for every parser without further subcommands; a parent's handler serves its actions."""
    handler = parser.get_default("handler") or inherited
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [(path, handler)]
    return [leaf for name, child in subs[0].choices.items() for leaf in _leaves(child, (*path, name), handler)]


def test_every_command_has_a_handler() -> None:
    leaves = _leaves(build_parser())
    assert len(leaves) > 15
    missing = [" ".join(path) for path, handler in leaves if not callable(handler)]
    assert not missing, f"commands without set_defaults(handler=...): {missing}"


def test_every_subsystem_cli_registers_the_same_way() -> None:
    modules = sorted(p.parent.name for p in PACKAGE.glob("*/cli.py"))
    assert {"analysis", "candidates", "ops", "search", "task", "training"} <= set(modules)
    for name in modules:
        module = importlib.import_module(f"reward_search.{name}.cli")
        assert callable(getattr(module, "register", None)), f"reward_search/{name}/cli.py has no register()"
        parser = argparse.ArgumentParser()
        module.register(parser.add_subparsers(dest="command"))
        assert all(callable(handler) for _, handler in _leaves(parser)), name
