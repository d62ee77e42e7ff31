"""A search's fair share of a Ray cluster, and what `resume --set` may change.

A search holds at most `search.cluster_share` of the cluster's trial slots (running and pending together), after
`search.driver_cpus` CPUs are left to drivers; `search.max_concurrent_trials` overrides the share. On a Ray the
driver started itself the share defaults to all of it; on an existing (shared) cluster to half.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from reward_search import io
from reward_search.config import RESUME_KEYS, ExperimentConfig, SearchConfig, changed_keys, dump_config, load_config
from reward_search.errors import UserError

SHARED_DEFAULT = 0.5


def slots_in(resources: dict[str, float], cpus: float, gpus: float, driver_cpus: float = 0.0) -> int:
    """How many trials needing `cpus` and `gpus` fit in `resources` after `driver_cpus` CPUs are set aside."""
    counts = []
    if cpus:
        counts.append(int(max(0.0, resources.get("CPU", 0.0) - driver_cpus) // cpus))
    if gpus:
        counts.append(int(resources.get("GPU", 0.0) // gpus))
    return max(1, min(counts)) if counts else 1


def trial_cap(search: SearchConfig, resources: dict[str, float], shared: bool) -> int:
    """The most trials this search may hold at once (running + pending) on a cluster with `resources`."""
    if search.max_concurrent_trials is not None:
        return search.max_concurrent_trials
    driver = search.driver_cpus if shared else 0.0
    slots = slots_in(resources, search.cpus_per_trial, search.gpus_per_trial, driver)
    share = search.cluster_share if search.cluster_share is not None else (SHARED_DEFAULT if shared else 1.0)
    return max(1, int(slots * share))


def barrier_warning(search: SearchConfig, slots: int) -> str | None:
    """Barrier mode idles slots in a round's last wave when the round is not a whole number of waves."""
    if search.mode != "barrier" or search.candidates_per_round % slots == 0:
        return None
    waves = -(-search.candidates_per_round // slots)
    idle = waves * slots - search.candidates_per_round
    return (
        f"search.candidates_per_round={search.candidates_per_round} is not a multiple of the {slots} trial slots: "
        f"each barrier round runs {waves} waves and leaves {idle} slots idle in the last; consider "
        f"candidates_per_round={waves * slots} or search.mode=steady"
    )


def resume_config(run_dir: Path, stored: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
    """`resume --set`: the stored config with resource/budget overrides, written back; refuses any other key."""
    if not overrides:
        return stored
    config = load_config(run_dir / "config.yaml", overrides)
    changed = changed_keys(stored, config)
    refused = [key for key in changed if key not in RESUME_KEYS]
    if refused:
        raise UserError(
            f"resume --set {refused[0]}: changes what a trial computes, so the run's results would not be "
            f"comparable; start a new run instead (resume accepts: {', '.join(RESUME_KEYS)})"
        )
    if changed:
        io.write_text(run_dir / "config.yaml", dump_config(config))
        manifest_path = run_dir / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "set": list(overrides)}
        io.write_json(manifest_path, {**manifest, "resumes": [*manifest.get("resumes", []), record]})
    return config


def validate_warnings(config: ExperimentConfig) -> list[str]:
    """Advice `reward-search validate` prints: a barrier round that does not fill whole waves of slots.

    The slots are search.max_concurrent_trials when set, else this machine's CPUs for a CPU-only search (a GPU
    search's slots depend on the cluster, so the driver repeats the check when it starts).
    """
    import os

    search = config.search
    if search.max_concurrent_trials is not None:
        slots = search.max_concurrent_trials
    elif not search.gpus_per_trial:
        slots = slots_in({"CPU": float(os.cpu_count() or 1)}, search.cpus_per_trial, 0.0)
    else:
        return []
    warning = barrier_warning(search, slots)
    return [warning] if warning else []
