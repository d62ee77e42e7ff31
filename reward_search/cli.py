"""The `reward-search` command line.

User errors (bad config, missing data, unknown model) print one line and exit 2; no traceback. Heavy libraries
(torch, transformers, ray) are imported inside the commands that need them, so `--help` and validation are fast.

Every command lives beside the subsystem it drives, in that subsystem's `cli.py`, whose `register(subparsers)` adds
its parsers, each with `set_defaults(handler=...)`; a handler takes the parsed arguments and returns the exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from reward_search import __version__
from reward_search.errors import (
    DISK_FULL_EXIT,
    OUT_OF_MEMORY_EXIT,
    DiskFull,
    UserError,
    disk_full_line,
    out_of_memory_line,
)

Handler = Callable[[argparse.Namespace], int]

EPILOG = """\
examples:
  reward-search evaluate experiments/demo.yaml           evaluate the embedded model on 32 test questions
  reward-search evaluate --model embedded --split dev --limit 20 --set eval.max_new_tokens=128
  reward-search validate experiments/demo.yaml --set eval.batch_size=8
  reward-search data --set data.source=local --set data.path=/data/gsm8k
  reward-search rewards check my_reward.py --json

Configuration: an experiment YAML file (see experiments/) plus any number of --set KEY=VALUE overrides, where
KEY is a dotted field path (e.g. eval.limit, model.spec, data.source). Every field and its default:
`reward-search validate`.
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser with every subsystem's commands (a missing library raises ModuleNotFoundError here)."""
    from reward_search.analysis import cli as analysis_cli
    from reward_search.candidates import cli as candidates_cli
    from reward_search.ops import cli as ops_cli
    from reward_search.search import cli as search_cli
    from reward_search.task import cli as task_cli
    from reward_search.training import cli as training_cli

    parser = argparse.ArgumentParser(
        prog="reward-search",
        description="Search for reward functions for GRPO post-training of language models, on Ray.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"reward-search {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (training_cli, search_cli, task_cli, candidates_cli, ops_cli, analysis_cli):
        module.register(sub)
    return parser


def _missing_module(exc: ModuleNotFoundError) -> int:
    """A Python without the project's environment (e.g. a Ray head started outside the venv): one line, exit 2."""
    if (exc.name or "").startswith("reward_search"):
        raise exc
    from reward_search.ops.jobs import missing_module_line

    print(f"reward-search: error: {missing_module_line(exc.name or str(exc), sys.executable)}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
    except ModuleNotFoundError as exc:
        return _missing_module(exc)
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except UserError as exc:
        print(f"reward-search: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ModuleNotFoundError as exc:
        return _missing_module(exc)
    except KeyboardInterrupt:
        print("reward-search: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _closed_pipe()
    except Exception as exc:  # a full disk or memory reached through Ray or a library: one line, not tracebacks
        full = disk_full_message(exc)
        if full is not None:
            print(f"reward-search: error: {full}", file=sys.stderr)
            return DISK_FULL_EXIT
        memory = out_of_memory_line(str(exc))
        if memory is None:
            raise
        print(f"reward-search: error: {memory}", file=sys.stderr)
        return OUT_OF_MEMORY_EXIT


def disk_full_message(exc: BaseException) -> str | None:
    """The one line for a full disk anywhere in `exc`'s chain (causes, contexts, a Ray task error's cause)."""
    import errno

    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, DiskFull):
            return str(current)
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return disk_full_line(str(current.filename or "a file"))
        todo += [current.__cause__, current.__context__, getattr(current, "cause", None)]
    if "No space left on device" in str(exc):  # a remote error that came back as text
        return disk_full_line("a file of the run")
    return None


def _closed_pipe() -> int:
    """The reader of stdout went away (`reward-search estimate ... | head`): end quietly, as `cat` does.

    stdout is pointed at /dev/null so that the interpreter's final flush does not raise again.
    """
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141  # 128 + SIGPIPE: what a shell reports for a writer the closed pipe ended


if __name__ == "__main__":
    sys.exit(main())
