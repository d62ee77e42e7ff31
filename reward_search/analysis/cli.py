"""`reward-search report RUN_DIR`: rebuild a run's HTML/Markdown statistics report from its run directory."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from reward_search.errors import UserError


def run_report(args: argparse.Namespace) -> int:
    """Build the report and print where it is; a missing or invalid run directory is a UserError (exit 2)."""
    from reward_search.analysis.report import build_report

    if args.resamples < 100:
        raise UserError(f"--resamples: at least 100 resamples are needed, got {args.resamples}")
    from reward_search.analysis.rundata import DAMAGE_PREFIX, load_run
    from reward_search.analysis.signal_section import summary_lines

    for line in load_run(args.run_dir).missing:  # damage to the run directory: one warning line per problem
        if line.startswith(DAMAGE_PREFIX):
            print(f"reward-search: warning: {line.removeprefix(DAMAGE_PREFIX)}", file=sys.stderr)
    path = build_report(args.run_dir, n_resamples=args.resamples, seed=args.seed)
    print(f"report: {path}")
    print(f"report: {path.with_name('report.md')}")
    for line in summary_lines(load_run(args.run_dir), args.resamples, args.seed):
        print(line)
    return 0


def register(subparsers: Any) -> None:
    """Add the `report` command to an argparse subparsers object (its handler is `run_report`)."""
    report = subparsers.add_parser(
        "report", help="write report/index.html and report/report.md (figures, CIs, McNemar) for a run directory"
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="the run directory (holds leaderboard.parquet)")
    report.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default: 10000)")
    report.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    report.set_defaults(handler=run_report)
