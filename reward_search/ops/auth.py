"""Ray 2.60 token authentication for HTTP calls to a cluster's dashboard (the Jobs API).

Ray's own client sends a token only when `RAY_AUTH_MODE=token` is set in the client's environment; it then reads
the token from `RAY_AUTH_TOKEN`, else the file named by `RAY_AUTH_TOKEN_PATH`, else `~/.ray/auth_token`. We look
in the same places in the same order, but send the token whenever one is found and `RAY_AUTH_MODE` is not
`disabled`, so `reward-search submit` works against a token-protected head without extra settings. A cluster with
authentication disabled ignores the header.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MODE_ENV = "RAY_AUTH_MODE"
TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"


def default_token_path() -> Path:
    """Where `ray get-auth-token --generate` and a local `ray start` keep the token."""
    return Path.home() / ".ray" / "auth_token"


@dataclass(frozen=True)
class Token:
    """An authentication token and where it came from (for error messages; never the token itself)."""

    value: str
    source: str

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.value}"}


def find_token() -> Token | None:
    """The token to send, in Ray's order of precedence; None when disabled or none is found."""
    if os.environ.get(MODE_ENV, "").strip().lower() == "disabled":
        return None
    value = os.environ.get(TOKEN_ENV, "").strip()
    if value:
        return Token(value, f"${TOKEN_ENV}")
    named = os.environ.get(TOKEN_PATH_ENV, "").strip()
    candidates = [(Path(named).expanduser(), f"${TOKEN_PATH_ENV} ({named})")] if named else []
    candidates.append((default_token_path(), str(default_token_path())))
    for path, source in candidates:
        if path.is_file():
            text = path.read_text(encoding="utf-8").strip()
            if text:
                return Token(text, source)
    return None


def missing_token_message(address: str) -> str:
    """One line for a 401: the cluster wants a token and none was sent."""
    return (
        f"the Ray cluster at {address} requires token authentication and no token was found: set {TOKEN_ENV} to the "
        f"cluster's token (on the head: `ray get-auth-token`), or put it in ~/.ray/auth_token or a file named by "
        f"{TOKEN_PATH_ENV}" + (f" (and unset {MODE_ENV}=disabled)" if os.environ.get(MODE_ENV) == "disabled" else "")
    )


def rejected_token_message(address: str, token: Token | None) -> str:
    """One line for a 403: a token was sent and the cluster rejected it."""
    source = token.source if token else "the environment"
    return (
        f"the Ray cluster at {address} rejected the authentication token from {source}: set {TOKEN_ENV} to the "
        f"cluster's token (on the head: `ray get-auth-token`)"
    )


def token_auth_enabled() -> bool:
    """Whether this process's Ray (after `ray.init`) uses token authentication (Ray 2.60's default)."""
    if os.environ.get(MODE_ENV, "").strip().lower() == "disabled":
        return False
    try:
        from ray._private.authentication.authentication_utils import is_token_auth_enabled
    except ImportError:  # an older Ray without token authentication
        return False
    return bool(is_token_auth_enabled())


def dashboard_hint(url: str, token_auth: bool | None = None) -> str:
    """The dashboard address with how to get in: Ray's dashboard asks for the token and keeps it in a cookie (it
    has no login link), so say which command prints the token and where the file is."""
    address = url if url.startswith("http") else f"http://{url}"
    if not (token_auth_enabled() if token_auth is None else token_auth):
        return f"dashboard: {address}"
    where = f"${TOKEN_ENV}" if os.environ.get(TOKEN_ENV) else str(default_token_path())
    return (
        f"dashboard: {address} (token authentication is on: paste the token that `ray get-auth-token` prints, "
        f"also in {where}, when the page asks)"
    )
