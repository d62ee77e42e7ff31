"""`reward-search status --address ADDR RUN_NAME`: read the leaderboard actor of a search running on a cluster."""

from __future__ import annotations

import os
from typing import Any

from reward_search.errors import UserError
from reward_search.ops.auth import MODE_ENV, find_token


def _gcs_address(address: str) -> str:
    if address.startswith(("http://", "https://")):
        raise UserError(
            f"--address {address}: `status` connects to the cluster itself; give its GCS address "
            "(HEAD:6379) or `auto` on a cluster node, not the dashboard URL"
        )
    return address


def live_status(address: str, run_name: str) -> dict[str, Any]:
    """{"run", "namespace", "summary", "entries"} from the run's leaderboard actor (entries as plain dicts)."""
    import ray

    from reward_search.search.leaderboard import ACTOR_NAME, namespace_for

    namespace = namespace_for(run_name)
    owns = not ray.is_initialized()
    if owns:
        # Ray enables token auth for an explicit address only when RAY_AUTH_MODE=token; do so when a token exists.
        if MODE_ENV not in os.environ and find_token() is not None:
            os.environ[MODE_ENV] = "token"
        try:
            ray.init(
                address=_gcs_address(address),
                namespace=namespace,
                log_to_driver=False,
                logging_level="ERROR",
                configure_logging=False,
            )
        except ConnectionError as exc:
            raise UserError(f"cannot connect to the Ray cluster at {address}: {str(exc).splitlines()[0]}") from None
    try:
        try:
            actor = ray.get_actor(ACTOR_NAME, namespace=namespace)
        except ValueError:
            raise UserError(
                f"no running search named {run_name!r} on {address} (no actor {ACTOR_NAME!r} in "
                f"namespace {namespace!r}); a finished run is read with `reward-search status RUN_DIR`"
            ) from None
        summary, entries = ray.get([actor.summary.remote(), actor.all.remote()], timeout=60)
    finally:
        if owns:
            ray.shutdown()
    return {"run": run_name, "namespace": namespace, "summary": summary, "entries": [e.to_dict() for e in entries]}


def format_live_status(status: dict[str, Any]) -> str:
    """The text `status --address` prints: a one-line summary and the leaderboard table."""
    from reward_search.search.progress import leaderboard_table
    from reward_search.search.records import LeaderboardEntry

    summary = status["summary"]
    best = summary.get("best")
    best_text = "nothing screened yet"
    if best:
        best_text = f"best {best['name']} ({best['accuracy']:.3f}, round {best['round']})"
    rounds = summary.get("rounds") or [0]
    head = (
        f"run {status['run']} (live): round {max(rounds)}, {summary['candidates']} candidates, {best_text}, "
        f"{summary.get('gpu_hours', 0.0):.2f} GPU-hours"
    )
    entries = [LeaderboardEntry.from_dict(e) for e in status["entries"]]
    return head + "\n" + leaderboard_table(entries)
