"""Is a self-hosted model server (vLLM, llama.cpp, Ollama, ...) reachable? Checked before a search starts.

A TCP connection to the host and port of `proposer.api_base` is enough: it catches a wrong port, a stopped
server or a typo in one line, before any trial runs, without sending credentials anywhere.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from reward_search.errors import UserError

DEFAULT_PORTS = {"http": 80, "https": 443}


def check_api_base(api_base: str, timeout_s: float = 5.0) -> None:
    """Raise a one-line `UserError` (exit 2) naming `api_base` when nothing answers there."""
    parts = urlsplit(api_base)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise UserError(f"proposer.api_base: {api_base!r} is not an http(s) URL (e.g. http://127.0.0.1:8000/v1)")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError as exc:
        raise UserError(f"proposer.api_base: {api_base!r}: {exc}") from None
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            return
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(
            f"proposer.api_base: cannot reach {api_base} ({reason}); start the model server or fix the URL"
        ) from None
