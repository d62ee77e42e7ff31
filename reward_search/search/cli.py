"""`reward-search validate`, `run`, `resume`, `finalize`, `status` and `doctor`: a search's life from its run directory.

`register(subparsers)` adds the commands, each with its handler (`set_defaults(handler=...)`), as every
subsystem's `cli.py` does. Ray and the training stack are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import dataclasses
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
    _repair_first(folder, config)
    from reward_search.search.driver import run_search
    from reward_search.search.sharing import resume_config
    from reward_search.training.cli import quiet_libraries

    config = resume_config(folder, config, args.overrides)
    quiet_libraries()
    outcome = run_search(config, folder, address=args.address, resume=True)
    print(f"run directory: {outcome.run_dir} ({outcome.seconds / 60:.1f} min)")
    return 0


def _warn_damage(report: Any) -> None:
    """One warning line per problem `search/damage.py` found, on stderr."""
    for problem in report.problems:
        print(f"reward-search: warning: {problem.line()}", file=sys.stderr)


def _repair_first(folder: Path, config: Any) -> None:
    """`resume`'s first step: the run directory's damage named, and what can be rebuilt rebuilt, under the lease."""
    from reward_search.search.damage import check_run, repair
    from reward_search.search.lease import RunLease
    from reward_search.search.runid import ensure_run_id

    report = check_run(folder, config)
    if report.clean:
        return
    _warn_damage(report)
    with RunLease(folder.resolve(), ensure_run_id(folder, config.run.name)):
        for line in repair(report):
            print(f"reward-search: rebuilt: {line}", file=sys.stderr)


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check a run directory for damage (one line per problem); `--fix` rebuilds what can be rebuilt."""
    from reward_search.search.damage import DAMAGED_EXIT, check_run, driver_alive, repair
    from reward_search.search.finalize_state import finalize_state
    from reward_search.search.lease import RunLease
    from reward_search.search.runid import ensure_run_id

    folder, config = _run_dir(args.run_dir)
    live = driver_alive(folder)
    if args.fix:
        RunLease(folder.resolve(), "").refuse_if_held()  # one line naming the live driver
    report = check_run(folder, config, live)
    for problem in report.problems:
        print(problem.line())
    print(finalize_state(folder, config.finalize.enabled, live).line())
    if live:
        print("a driver is running: trials in flight are not checked against the leaderboard")
    if report.clean:
        print(f"{folder}: no damage found ({len(report.entries)} candidates)")
        return 0
    if not args.fix:
        print(f"{folder}: {len(report.problems)} problem(s); `reward-search doctor {folder} --fix` rebuilds them")
        return DAMAGED_EXIT
    with RunLease(folder.resolve(), ensure_run_id(folder, config.run.name)):
        for line in repair(report):
            print(f"rebuilt: {line}")
    left = check_run(folder, config)
    for problem in left.problems:
        print(f"left: {problem.line()}")
    return 0 if left.clean else DAMAGED_EXIT


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
    return _run_dir_status(args.run_dir, args.json)


def _run_dir_status(run_dir: str, as_json: bool) -> int:
    """`status RUN_DIR`: the damage checks' warnings, then progress, driver, leaderboard and finalize lines."""
    from reward_search.search.damage import check_run, driver_alive
    from reward_search.search.driver import DriverState
    from reward_search.search.finalize_state import finalize_state
    from reward_search.search.progress import leaderboard_table

    folder, config = _run_dir(run_dir)
    live = driver_alive(folder)
    damage = check_run(folder, config, live)  # the board as it reads, damage worked around; one line per problem
    entries, final = damage.board(), finalize_state(folder, config.finalize.enabled, live)
    state = DriverState.load(folder)
    if as_json:
        problems = [dataclasses.asdict(p) for p in damage.problems]
        data = {"entries": [e.to_dict() for e in entries], "state": vars(state), "problems": problems}
        print(json.dumps({**data, "finalize": dataclasses.asdict(final)}, indent=2, default=str))
        return 0
    _warn_damage(damage)
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

    print(final.line())  # not started, running, interrupted, failed (with its reason) or done
    for line in status_lines(folder):
        print(line)  # the untrained model beside the baseline on test, once finalize has run
    if damage.problems:
        print(
            f"damage: {len(damage.problems)} problem(s) (warnings above); `reward-search doctor {folder} --fix` or "
            f"`reward-search resume {folder}` rebuilds what can be rebuilt"
        )
    return 0


def register(subparsers: Any) -> None:
    """Add `run`, `resume`, `finalize`, `status`, `doctor` and `validate` to the `reward-search` command line."""
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

    _register_status(subparsers)
    _register_doctor(subparsers)

    p = subparsers.add_parser("validate", help="check an experiment file and print the resolved config")
    add_config_args(p)
    p.set_defaults(handler=cmd_validate)


def _register_status(subparsers: Any) -> None:
    """`status [RUN_DIR|RUN] [--address] [--json]`."""
    p = subparsers.add_parser(
        "status",
        help="progress and leaderboard of a run directory (or, with --address, of a running search by run name)",
        description="A run directory's progress, driver, leaderboard and finalize state. It is checked for damage "
        "first (as `reward-search doctor` does): one warning line per problem, and the board shown as it reads "
        "with the damage worked around. With --address, the live searches on a cluster, or one of them.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR|RUN", nargs="?")
    p.add_argument(
        "--address",
        help="a Ray cluster (GCS): without RUN, list its live searches; with RUN (run id or name), read that one",
    )
    p.add_argument(
        "--json", action="store_true", help="print entries, driver state, damage found and finalize state as JSON"
    )
    p.add_argument("--connect-timeout", type=float, metavar="SECONDS", help=_TIMEOUT_HELP)
    p.set_defaults(handler=cmd_status)


def _register_doctor(subparsers: Any) -> None:
    """`doctor RUN_DIR [--fix]`."""
    p = subparsers.add_parser(
        "doctor",
        help="check a run directory for damage; --fix rebuilds what can be rebuilt",
        description="Check a run directory: the leaderboard snapshot reads, no event was lost (every candidate record "
        "and screening result is on the board), every candidate record parses, every done candidate's trial has its "
        "result.json; and say where finalize stands. One line per problem. Exit status: 0 no damage, 3 damage found "
        "(with --fix: damage left that cannot be rebuilt), 2 not a run directory (or, with --fix, a live driver holds "
        "it). --fix rebuilds the snapshot from the event log, the candidate records and the trial results, records "
        "lost events, rewrites an unreadable candidate record from its leaderboard entry when the source hashes to "
        "the id, and sets a done candidate whose result.json is missing back to accepted, so that `reward-search "
        "resume` screens it again. `status`, `report` and `resume` run the same checks first.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--fix", action="store_true", help="rebuild what can be rebuilt (takes the run directory's lease)")
    p.set_defaults(handler=cmd_doctor)
