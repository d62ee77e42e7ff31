"""`reward-search validate`, `run`, `resume`, `finalize` and `status`: a search's life from its run directory.

`register(subparsers)` adds the commands, each with its handler (`set_defaults(handler=...)`), as every
subsystem's `cli.py` does. Ray and the training stack are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from reward_search.config import add_config_args, config_from_args
from reward_search.errors import UserError

_ADDRESS_HELP = "Ray cluster address (default: $RAY_ADDRESS, else a local Ray)"
_TIMEOUT_HELP = (
    "seconds to wait for the cluster address to answer before failing (default: $REWARD_SEARCH_CONNECT_TIMEOUT, "
    "else 30)"
)


def _check_address(args: argparse.Namespace) -> None:
    """The cluster address answers within the connect timeout, else one line; before anything is written.

    `--connect-timeout` is passed on through the environment to the driver's own connection."""
    import os

    from reward_search.search.tuner import CONNECT_TIMEOUT_ENV, check_reachable, connect_timeout

    if args.connect_timeout is not None:
        os.environ[CONNECT_TIMEOUT_ENV] = str(connect_timeout(args.connect_timeout))
    check_reachable(args.address)


def cmd_validate(args: argparse.Namespace) -> int:
    """Print the resolved config, with warnings about this machine and the search's sharing of the cluster."""
    from reward_search.config import dump_config
    from reward_search.search.sharing import validate_warnings
    from reward_search.training.placement import preflight

    config = config_from_args(args)
    preflight(config)  # this machine: bitsandbytes for 8-bit/4-bit, and a local Ray's GPUs
    sys.stdout.write(dump_config(config))
    for warning in validate_warnings(config):
        print(f"# warning: {warning}", file=sys.stderr)
    print(f"# {args.experiment or 'defaults'}: valid", file=sys.stderr)
    return 0


def check_run_dir(folder: Path, what: str) -> None:
    """One line naming `what` (the flag or key that gave `folder`) when `folder` is a file or cannot be created."""
    import os

    if folder.exists() and not folder.is_dir():
        raise UserError(f"{what}: is a file, not a run directory")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{what}: cannot be created: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{what}: cannot be created or written: no write permission on {existing}")


def cmd_run(args: argparse.Namespace) -> int:
    """Start a search (then its finalize phase) and print the run directory."""
    from reward_search.training.cli import quiet_libraries

    config = config_from_args(args)
    folder = (Path(args.run_dir) if args.run_dir else Path(config.run.storage_path) / config.run.name).expanduser()
    check_run_dir(
        folder, f"--run-dir {folder}" if args.run_dir else f"run directory {folder} (run.storage_path/run.name)"
    )
    _check_address(args)
    quiet_libraries()
    from reward_search.search.driver import run_search

    outcome = run_search(config, args.run_dir, address=args.address)
    print(f"run directory: {outcome.run_dir} ({outcome.seconds / 60:.1f} min)")
    return 0


def _run_dir(text: str) -> tuple[Path, Any]:
    """A run directory and its stored config; a one-line error when the folder is not one."""
    from reward_search.config import load_config
    from reward_search.search.driver import CONFIG_FILE

    folder = Path(text)
    if not (folder / CONFIG_FILE).is_file():
        raise UserError(f"{folder}: not a run directory (no {CONFIG_FILE}); start one with `reward-search run`")
    return folder, load_config(folder / CONFIG_FILE)


def cmd_resume(args: argparse.Namespace) -> int:
    """Continue a run from its run directory, with resource or budget changes only."""
    from reward_search.search.lease import RunLease

    folder, config = _run_dir(args.run_dir)
    RunLease(folder.resolve(), "").refuse_if_held()  # before `--set` rewrites config.yaml under a live driver
    _check_address(args)
    from reward_search.search.driver import run_search
    from reward_search.search.sharing import resume_config
    from reward_search.training.cli import quiet_libraries

    config = resume_config(folder, config, args.overrides)
    quiet_libraries()
    outcome = run_search(config, folder, address=args.address, resume=True)
    print(f"run directory: {outcome.run_dir} ({outcome.seconds / 60:.1f} min)")
    return 0


def cmd_finalize(args: argparse.Namespace) -> int:
    """The finalize phase over a run directory's leaderboard; prints its table."""
    from reward_search.search.lease import RunLease
    from reward_search.search.runid import ensure_run_id

    folder, config = _run_dir(args.run_dir)
    _check_address(args)  # before anything is written: ensure_run_id records a run id in a directory without one
    lease = RunLease(folder.resolve(), ensure_run_id(folder, config.run.name))
    lease.refuse_if_held()  # one line naming the live driver, before connecting
    from reward_search.search.driver import finalize_only
    from reward_search.search.finalize import finalize_table
    from reward_search.training.cli import quiet_libraries

    quiet_libraries()
    with lease:  # a driver started meanwhile is refused; one that holds it now refuses this finalize
        outcome = finalize_only(config, folder, address=args.address)
    print(finalize_table(outcome))
    print(f"wrote {folder / 'finalize.json'}; report: reward-search report {folder}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """A run directory's progress and leaderboard; with --address, the live searches on a cluster or one of them."""
    if args.address:
        _check_address(args)
    from reward_search.search.driver import DriverState
    from reward_search.search.leaderboard import LEADERBOARD_FILE, load_entries
    from reward_search.search.progress import leaderboard_table

    if args.address and not args.run_dir:  # every live search on the cluster
        from reward_search.search.live import format_live_searches, live_searches

        rows = live_searches(args.address)
        print(json.dumps(rows, indent=2, default=str) if args.json else format_live_searches(rows, args.address))
        return 0
    if not args.run_dir:
        raise UserError("status: give a run directory (or --address ADDR to list the live searches on a cluster)")
    if args.address:  # a running search: ask its leaderboard actor (RUN is a run id or a run name)
        from reward_search.search.live import format_live_status, live_status

        live = live_status(args.address, args.run_dir)
        print(json.dumps(live, indent=2, default=str) if args.json else format_live_status(live))
        return 0
    folder, config = _run_dir(args.run_dir)
    entries = load_entries(folder) if (folder / LEADERBOARD_FILE).is_file() else []
    state = DriverState.load(folder)
    if args.json:
        print(json.dumps({"entries": [e.to_dict() for e in entries], "state": vars(state)}, indent=2, default=str))
        return 0
    rounds = max((e.round for e in entries), default=0)
    from reward_search.proposers.base import spend_text

    records = state.proposer_state.get("records", []) or []  # older states lack the count: the records have it
    unpriced = state.proposer_usage.get("unpriced_calls") or sum(r.get("cost_known") is False for r in records)
    print(
        f"run {folder.name}: round {rounds} of {config.search.rounds}, {len(entries)} candidates, "
        f"{state.sessions} driver session(s); proposer spend "
        f"{spend_text(state.proposer_usage.get('cost_usd'), unpriced)}"
    )
    from reward_search.search.lease import driver_line

    print(driver_line(folder))  # a killed driver leaves its lease behind: say that nothing is progressing
    from reward_search.proposers.transcripts import format_round_counts

    for line in format_round_counts(state.proposer_state.get("records", []), str(folder / "proposals")):
        print(line)  # LLM proposer: parse outcomes and rejections per round, with the transcript folder
    print(leaderboard_table(entries, metric=config.selection.metric))
    from reward_search.search.untrained import status_lines

    for line in status_lines(folder):
        print(line)  # the untrained model beside the baseline on test, once finalize has run
    return 0


def register(subparsers: Any) -> None:
    """Add `run`, `resume`, `finalize`, `status` and `validate` to the `reward-search` command line."""
    p = subparsers.add_parser(
        "run",
        help="run a reward search (rounds of proposals screened as Ray Tune trials)",
        description="Start a search: each round the proposer writes candidate rewards, they are validated in the "
        "sandbox, screened as GRPO + LoRA Tune trials and ranked on the dev split; the leaderboard conditions the "
        "next round. Uses RAY_ADDRESS / --address when given, else starts a local Ray. Ctrl-C stops it; "
        "`reward-search resume RUN_DIR` continues without retraining finished candidates.",
    )
    add_config_args(p)
    p.add_argument("--address", help=_ADDRESS_HELP)
    p.add_argument("--run-dir", help="run directory (default: <run.storage_path>/<run.name>)")
    p.add_argument("--connect-timeout", type=float, metavar="SECONDS", help=_TIMEOUT_HELP)
    p.set_defaults(handler=cmd_run)

    p = subparsers.add_parser("resume", help="continue a run from its run directory")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--address", help=_ADDRESS_HELP)
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a resource or budget key (search.max_concurrent_trials, search.gpus_per_trial, budgets, ...) "
        "to continue on a larger or smaller cluster; keys that change what a trial computes are refused",
    )
    p.add_argument("--connect-timeout", type=float, metavar="SECONDS", help=_TIMEOUT_HELP)
    p.set_defaults(handler=cmd_resume)

    p = subparsers.add_parser(
        "finalize",
        help="ensembles, baseline, random control and seeds for a finished search (runs after `run` by itself)",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--address", help=_ADDRESS_HELP)
    p.add_argument("--connect-timeout", type=float, metavar="SECONDS", help=_TIMEOUT_HELP)
    p.set_defaults(handler=cmd_finalize)

    p = subparsers.add_parser(
        "status",
        help="progress and leaderboard of a run directory (or, with --address, of a running search by run name)",
    )
    p.add_argument("run_dir", metavar="RUN_DIR|RUN", nargs="?")
    p.add_argument(
        "--address",
        help="a Ray cluster (GCS): without RUN, list its live searches; with RUN (run id or name), read that one",
    )
    p.add_argument("--json", action="store_true", help="print entries and driver state as JSON")
    p.add_argument("--connect-timeout", type=float, metavar="SECONDS", help=_TIMEOUT_HELP)
    p.set_defaults(handler=cmd_status)

    p = subparsers.add_parser("validate", help="check an experiment file and print the resolved config")
    add_config_args(p)
    p.set_defaults(handler=cmd_validate)
