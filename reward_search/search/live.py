"""`reward-search status --address ADDR [RUN]`: the live searches on a cluster, or one search's leaderboard actor.

Searches are found by their leaderboard actors (one per run, in the namespace `reward-search-<run id>`); RUN is a run
id, or a run name that exactly one live search has.
"""

from __future__ import annotations

import os
from typing import Any

from reward_search.candidates.records import LeaderboardEntry
from reward_search.errors import UserError
from reward_search.ops.auth import MODE_ENV, find_token
from reward_search.search.leaderboard import ACTOR_NAME, NAMESPACE_PREFIX, namespace_for
from reward_search.search.runid import run_name_of, slug


def _gcs_address(address: str) -> str:
    if address.startswith(("http://", "https://")):
        raise UserError(
            f"--address {address}: `status` connects to the cluster itself; give its GCS address "
            "(HEAD:6379) or `auto` on a cluster node, not the dashboard URL"
        )
    return address


def _connect(address: str) -> bool:
    """Connect to the cluster unless already connected; True when this call connected (and must disconnect)."""
    import ray

    if ray.is_initialized():
        return False
    # Ray enables token auth for an explicit address only when RAY_AUTH_MODE=token; do so when a token exists.
    if MODE_ENV not in os.environ and find_token() is not None:
        os.environ[MODE_ENV] = "token"
    from reward_search.search.tuner import explained_connection

    gcs = _gcs_address(address)
    with explained_connection(address):  # one line naming the address; the token when that was the cause
        ray.init(address=gcs, log_to_driver=False, logging_level="ERROR", configure_logging=False)
    return True


def _live_run_ids() -> list[str]:
    """Run ids of the searches whose leaderboard actor lives on the connected cluster."""
    import ray

    found = ray.util.list_named_actors(all_namespaces=True)
    return sorted(
        a["namespace"][len(NAMESPACE_PREFIX) :]
        for a in found
        if a.get("name") == ACTOR_NAME and str(a.get("namespace", "")).startswith(NAMESPACE_PREFIX)
    )


def _actor(run_id: str) -> Any:
    import ray

    return ray.get_actor(ACTOR_NAME, namespace=namespace_for(run_id))


def live_searches(address: str) -> list[dict[str, Any]]:
    """Every live search on the cluster: run id, run name, run directory and leaderboard summary."""
    import ray

    owns = _connect(address)
    try:
        rows = []
        for run_id in _live_run_ids():
            try:
                actor = _actor(run_id)
                summary, run_dir = ray.get([actor.summary.remote(), actor.where.remote()], timeout=30)
            except (ValueError, ray.exceptions.RayError):
                continue  # ended between the listing and the call
            rows.append({"run_id": run_id, "run": run_name_of(run_id), "run_dir": run_dir, "summary": summary})
        return rows
    finally:
        if owns:
            ray.shutdown()


def _pick(run: str, run_ids: list[str], address: str) -> str:
    """The run id `run` names: a run id, or the name of exactly one live search."""

    if run in run_ids:
        return run
    named = [r for r in run_ids if run_name_of(r) == slug(run)]
    if len(named) == 1:
        return named[0]
    if named:
        raise UserError(f"{len(named)} live searches are named {run!r} on {address}: {', '.join(named)}; give a run id")
    raise UserError(
        f"no running search named {run!r} on {address} (live: {', '.join(run_ids) or 'none'}); "
        "a finished run is read with `reward-search status RUN_DIR`"
    )


def live_status(address: str, run: str) -> dict[str, Any]:
    """{"run", "run_id", "namespace", "summary", "entries"} of a live search, by run id or (unique) run name."""
    import ray

    owns = _connect(address)
    try:
        run_id = _pick(run, _live_run_ids(), address)
        summary, entries = ray.get([_actor(run_id).summary.remote(), _actor(run_id).all.remote()], timeout=60)
    finally:
        if owns:
            ray.shutdown()
    return {
        "run": run,
        "run_id": run_id,
        "namespace": namespace_for(run_id),
        "summary": summary,
        "entries": [e.to_dict() for e in entries],
    }


def format_live_searches(rows: list[dict[str, Any]], address: str) -> str:
    """The table `status --address ADDR` prints: one line per live search."""
    if not rows:
        return f"no live searches on {address}"
    lines = [f"{'run id':<44} {'round':>5} {'candidates':>10} {'best':>6}  run directory"]
    for row in rows:
        summary = row["summary"]
        best = (summary.get("best") or {}).get("accuracy")
        rounds = summary.get("rounds") or [0]
        best_text = "-" if best is None else f"{best:.3f}"
        lines.append(
            f"{row['run_id']:<44} {max(rounds):>5} {summary['candidates']:>10} {best_text:>6}  {row['run_dir']}"
        )
    return "\n".join(lines)


def format_live_status(status: dict[str, Any]) -> str:
    """The text `status --address` prints: a one-line summary and the leaderboard table."""
    from reward_search.search.progress import leaderboard_table  # imports ray.tune: only when a table is shown

    summary = status["summary"]
    best = summary.get("best")
    best_text = "nothing screened yet"
    if best:
        best_text = f"best {best['name']} ({best['accuracy']:.3f}, round {best['round']})"
    rounds = summary.get("rounds") or [0]
    head = (
        f"run {status.get('run_id', status['run'])} (live): round {max(rounds)}, {summary['candidates']} "
        f"candidates, {best_text}, {summary.get('gpu_hours', 0.0):.2f} GPU-hours"
    )
    entries = [LeaderboardEntry.from_dict(e) for e in status["entries"]]
    return head + "\n" + leaderboard_table(entries, metric=summary.get("metric", "accuracy"))
