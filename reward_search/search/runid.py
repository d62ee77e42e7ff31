"""Run ids: one per run directory, made once and kept in its manifest. The id (not the run name, which users
reuse, e.g. the default `paper`) names the run's Ray namespace, its leaderboard actor and its metric tags.
"""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

_SLUG = re.compile(r"[^a-z0-9]+")
RUN_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,80}-\d{8}t\d{6}-[0-9a-f]{6}$")


def slug(name: str) -> str:
    """`My Run_2` -> `my-run-2` (at most 40 characters; `run` when nothing is left)."""
    return _SLUG.sub("-", name.lower()).strip("-")[:40].strip("-") or "run"


def new_run_id(name: str, now: float | None = None) -> str:
    """`<name slug>-<UTC yyyymmddThhmmss>-<6 random hex>`: readable, sortable by start, unique."""
    stamp = time.strftime("%Y%m%dt%H%M%S", time.gmtime(time.time() if now is None else now))
    return f"{slug(name)}-{stamp}-{secrets.token_hex(3)}"


def run_name_of(run_id: str) -> str:
    """The name slug a run id starts with (`paper-20261128t050000-a1b2c3` -> `paper`)."""
    parts = run_id.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else run_id


def ensure_run_id(run_dir: Path, name: str) -> str:
    """The run id in `run_dir/manifest.json`, made and written there once (runs made before ids get one now)."""
    import json

    from reward_search import io

    manifest_path = Path(run_dir) / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    run_id = manifest.get("run_id")
    if not run_id:
        run_id = new_run_id(name)
        io.write_json(manifest_path, {**manifest, "run_id": run_id})
    return str(run_id)
