"""`reward-search data`: load the configured task's data and print its splits' sizes and fingerprints.

`register(subparsers)` adds the command with its handler, as every subsystem's `cli.py` does.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from reward_search.config import add_config_args, config_from_args


def cmd_data(args: argparse.Namespace) -> int:
    """Print the data manifest: the task, where it came from, and each split's size and sha256."""
    from reward_search.config import to_plain
    from reward_search.task import get_task

    config = config_from_args(args)
    splits = get_task(config).load_splits()
    manifest = to_plain(splits.manifest)
    if args.json:
        print(json.dumps(manifest, indent=2))
        return 0
    named = f"{manifest['display_name']} ({manifest['task']})"
    print(f"task {named} from {manifest['location']} (dev seed {manifest['dev_seed']})")
    for name, info in manifest["splits"].items():
        print(f"  {name:<5} {info['size']:>6} questions  sha256 {info['sha256'][:16]}")
    if manifest["removed_overlap"]:
        print(f"  dropped from the training pool as duplicates of dev/test: {manifest['removed_overlap']}")
    return 0


def register(subparsers: Any) -> None:
    """Add `data` to the `reward-search` command line."""
    p = subparsers.add_parser("data", help="load the configured data and print split sizes and fingerprints")
    add_config_args(p)
    p.add_argument("--json", action="store_true", help="print the data manifest as JSON")
    p.set_defaults(handler=cmd_data)
