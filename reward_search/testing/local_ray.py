"""A fresh local Ray of the test's own (never another instance on this host), its start retried.

Ray 2.60 gives a raylet 30 s to register, which a loaded 2-core machine can exceed; Ray then raises a bare
Exception, so a start is tried three times before the error is let through.
"""

from __future__ import annotations

from typing import Any

ATTEMPTS = 3


def start_local_ray(**options: Any) -> None:
    """`ray.init(address="local", ...)` after shutting down any Ray this process holds; `options` go to ray.init."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    for attempt in range(ATTEMPTS):
        try:
            ray.init(address="local", include_dashboard=False, log_to_driver=False, **options)
            return
        except Exception:  # Ray raises a bare Exception when its node does not start in time
            ray.shutdown()
            if attempt == ATTEMPTS - 1:
                raise
