"""`reward-search submit` and `reward-search jobs {list,status,logs,stop}`: searches as Ray Jobs on a cluster."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from reward_search.errors import UserError

_ADDRESS_HELP = "the Ray dashboard's address, e.g. http://HEAD:8265 (default: $RAY_API_SERVER_ADDRESS)"


def _add_address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", help=_ADDRESS_HELP)


def _resources(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--entrypoint-resources: not JSON ({exc.msg}); e.g. '{{\"head\": 1}}'") from None
    if not isinstance(data, dict) or not all(isinstance(v, int | float) for v in data.values()):
        raise UserError("--entrypoint-resources: expected a JSON object of resource name -> amount")
    return {str(k): float(v) for k, v in data.items()}


def cmd_submit(args: argparse.Namespace) -> int:
    from reward_search.ops import jobs

    options = jobs.SubmitOptions(
        runtime_env=jobs.load_runtime_env(args.runtime_env),
        pip=tuple(args.pip or ()),
        entrypoint_num_cpus=args.entrypoint_num_cpus,
        entrypoint_num_gpus=args.entrypoint_num_gpus,
        entrypoint_resources=_resources(args.entrypoint_resources),
        submission_id=args.submission_id,
    )
    submitted = jobs.submit(args.address, args.experiment, args.overrides, options)
    print(f"job: {submitted.job_id}")
    print(f"dashboard: {submitted.dashboard_url}")
    print(f"run directory (on the cluster): {submitted.run_dir}", flush=True)
    if not args.follow:
        where = f" --address {args.address}" if args.address else ""
        print(f"follow it with: reward-search jobs logs {submitted.job_id} --follow{where}")
        return 0
    return _follow(args.address, submitted.job_id)


def _follow(address: str | None, job_id: str) -> int:
    from reward_search.ops import jobs

    try:
        status = jobs.follow(address, job_id)
    except KeyboardInterrupt:
        print(
            f"\nreward-search: stopped following; job {job_id} keeps running "
            f"(stop it with `reward-search jobs stop {job_id}`)",
            file=sys.stderr,
        )
        return 130
    print(f"job {job_id}: {status}", file=sys.stderr)
    hint = jobs.failure_hint(address, job_id) if status == "FAILED" else None
    if hint:  # e.g. a head started without the project's environment (ModuleNotFoundError: ray)
        print(f"reward-search: {hint}", file=sys.stderr)
    return jobs.exit_code(status)


def _when(stamp_ms: int | None) -> str:
    return "-" if not stamp_ms else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp_ms / 1000))


def cmd_jobs_list(args: argparse.Namespace) -> int:
    from reward_search.ops import jobs

    rows = jobs.list_jobs(args.address, all_jobs=args.all)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no reward-search jobs" + ("" if args.all else " (--all lists every job)"))
        return 0
    print(f"{'job':<52} {'status':<10} {'started':<19} {'run':<20}")
    for row in rows:
        print(
            f"{row['job_id']:<52} {row['status']:<10} {_when(row['start_time']):<19} "
            f"{row['metadata'].get('run_name', '-'):<20}"
        )
    return 0


def _print_info(info: dict[str, Any]) -> None:
    meta = info["metadata"]
    print(f"job {info['job_id']}: {info['status']}" + (f" ({info['message']})" if info["message"] else ""))
    print(f"  started {_when(info['start_time'])}, ended {_when(info['end_time'])}")
    print(f"  entrypoint: {info['entrypoint']}")
    if meta.get("run_dir"):
        print(f"  run directory (on the cluster): {meta['run_dir']}")
    print(f"  dashboard: {info['dashboard_url']}")


def cmd_jobs_status(args: argparse.Namespace) -> int:
    from reward_search.ops import jobs

    info = jobs.job_info(args.address, args.job_id)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_info(info)
    return 0


def cmd_jobs_logs(args: argparse.Namespace) -> int:
    from reward_search.ops import jobs

    if args.follow:
        return _follow(args.address, args.job_id)
    sys.stdout.write(jobs.job_logs(args.address, args.job_id))
    return 0


def cmd_jobs_stop(args: argparse.Namespace) -> int:
    from reward_search.ops import jobs

    stopped = jobs.stop_job(args.address, args.job_id)
    print(f"job {args.job_id}: " + ("stop requested" if stopped else "already finished"))
    return 0


def register(subparsers: Any) -> None:
    """Add `submit`, `jobs` and `estimate` to the `reward-search` command line."""
    from reward_search.ops.estimate import add_estimate_parser

    p = subparsers.add_parser(
        "submit",
        help="run a search on a Ray cluster as a Ray Job",
        description="Submit `reward-search run EXPERIMENT` as a Ray Job. The project travels as the job's "
        "working_dir; run.storage_path must be an absolute path on storage every node sees. Prints the job id, "
        "its dashboard page and the run directory; --follow streams the logs and exits with the job's status "
        "(0 succeeded, 1 failed or stopped). A token for Ray's token authentication is read from RAY_AUTH_TOKEN, "
        "RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token.",
    )
    p.add_argument("experiment", help="experiment YAML file (inside the project, or it is shipped beside the package)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field by its dotted path (repeatable); passed on to the job",
    )
    _add_address(p)
    p.add_argument("--follow", action="store_true", help="stream the logs until the job ends; exit with its status")
    p.add_argument("--runtime-env", metavar="FILE", help="a YAML/JSON runtime_env merged over the generated one")
    p.add_argument("--pip", action="append", metavar="REQ", help="a pip requirement to install for the job")
    p.add_argument("--entrypoint-num-cpus", type=float, help="CPUs reserved for the driver process")
    p.add_argument("--entrypoint-num-gpus", type=float, help="GPUs reserved for the driver process")
    p.add_argument("--entrypoint-resources", metavar="JSON", help="custom resources for the driver, as JSON")
    p.add_argument("--submission-id", help="the job id (default: reward-search-<run>-<time>-<hex>)")
    p.set_defaults(handler=cmd_submit)

    p = subparsers.add_parser("jobs", help="list, inspect, tail and stop searches submitted to a Ray cluster")
    actions = p.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)
    q = actions.add_parser("list", help="submitted reward-search jobs, newest first")
    _add_address(q)
    q.add_argument("--all", action="store_true", help="every job on the cluster, not only reward-search's")
    q.add_argument("--json", action="store_true", help="print the jobs as JSON")
    q.set_defaults(handler=cmd_jobs_list)
    q = actions.add_parser("status", help="status, times and run directory of a job")
    q.add_argument("job_id", metavar="ID")
    _add_address(q)
    q.add_argument("--json", action="store_true", help="print the job info as JSON")
    q.set_defaults(handler=cmd_jobs_status)
    q = actions.add_parser("logs", help="a job's driver logs")
    q.add_argument("job_id", metavar="ID")
    _add_address(q)
    q.add_argument("--follow", action="store_true", help="stream until the job ends; exit with its status")
    q.set_defaults(handler=cmd_jobs_logs)
    q = actions.add_parser("stop", help="stop a running job")
    q.add_argument("job_id", metavar="ID")
    _add_address(q)
    q.set_defaults(handler=cmd_jobs_stop)
    add_estimate_parser(subparsers)
