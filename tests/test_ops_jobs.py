"""Ray Jobs submission without a cluster: the job plan, token discovery, and one-line errors (real HTTP servers)."""

from __future__ import annotations

import http.server
import json
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reward_search.cli import main
from reward_search.errors import UserError
from reward_search.ops import auth, jobs

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "experiments" / "smoke.yaml"


def test_plan_ships_the_project_and_runs_the_experiment_on_shared_storage(tmp_path: Path) -> None:
    overrides = [f"run.storage_path={tmp_path}", "search.dashboard=false", "run.name=planned"]
    plan = jobs.plan_submission(str(SMOKE), overrides, jobs.SubmitOptions(pip=("emoji==2.0",)))
    assert plan.runtime_env["working_dir"] == str(REPO)
    for pattern in (".venv/", ".git/", "runs/", "benchmarks/results/", "__pycache__/"):
        assert pattern in plan.runtime_env["excludes"]
    assert plan.runtime_env["pip"] == ["emoji==2.0"]
    assert shlex.split(plan.entrypoint) == [
        "python",
        "-m",
        "reward_search.cli",
        "run",
        "experiments/smoke.yaml",
        *[x for o in overrides for x in ("--set", o)],
    ]
    assert plan.run_dir == f"{tmp_path}/planned"
    assert plan.metadata["experiment"] == "experiments/smoke.yaml" and plan.metadata["run_name"] == "planned"
    assert plan.submission_id.startswith("reward-search-planned-")
    assert plan.staging_dir is None


def test_plan_merges_a_user_runtime_env(tmp_path: Path) -> None:
    user = {"env_vars": {"HF_TOKEN": "x"}, "excludes": ["data/"], "pip": ["a"], "container": {"image": "img"}}
    plan = jobs.plan_submission(
        str(SMOKE), [f"run.storage_path={tmp_path}"], jobs.SubmitOptions(runtime_env=user, pip=("b",))
    )
    env = plan.runtime_env
    assert env["env_vars"]["HF_TOKEN"] == "x" and env["env_vars"]["PYTHONUNBUFFERED"] == "1"
    assert "data/" in env["excludes"] and ".venv/" in env["excludes"]
    assert env["pip"] == ["a", "b"] and env["container"] == {"image": "img"}


def test_experiment_outside_the_project_is_staged_beside_the_package(tmp_path: Path) -> None:
    outside = tmp_path / "mine.yaml"
    outside.write_text(SMOKE.read_text())
    plan = jobs.plan_submission(str(outside), [f"run.storage_path={tmp_path}"], jobs.SubmitOptions())
    try:
        assert (Path(plan.staging_dir) / "mine.yaml").is_file()
        assert plan.runtime_env["working_dir"] == plan.staging_dir
        assert plan.runtime_env["py_modules"] == [str(REPO / "reward_search")]
        assert " run mine.yaml" in plan.entrypoint
    finally:
        import shutil

        shutil.rmtree(plan.staging_dir)


def test_relative_storage_path_is_refused_with_the_fix() -> None:
    with pytest.raises(UserError, match=r"run.storage_path 'runs' is relative.*--set run.storage_path=/"):
        jobs.plan_submission(str(SMOKE), [], jobs.SubmitOptions())


def test_bad_config_fails_before_anything_is_sent(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="search.rounds"):
        jobs.plan_submission(str(SMOKE), [f"run.storage_path={tmp_path}", "search.rounds=lots"], jobs.SubmitOptions())


def test_token_precedence_env_then_path_then_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (auth.MODE_ENV, auth.TOKEN_ENV, auth.TOKEN_PATH_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert auth.find_token() is None
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("home-token\n")
    assert auth.find_token() == auth.Token("home-token", str(tmp_path / ".ray" / "auth_token"))
    named = tmp_path / "tok"
    named.write_text("path-token")
    monkeypatch.setenv(auth.TOKEN_PATH_ENV, str(named))
    assert auth.find_token().value == "path-token"
    monkeypatch.setenv(auth.TOKEN_ENV, "env-token")
    token = auth.find_token()
    assert token.value == "env-token" and token.headers() == {"Authorization": "Bearer env-token"}
    monkeypatch.setenv(auth.MODE_ENV, "disabled")
    assert auth.find_token() is None


class _Auth(http.server.BaseHTTPRequestHandler):
    """A stand-in dashboard that accepts only `Bearer right`."""

    def do_GET(self) -> None:
        header = self.headers.get("Authorization")
        if header is None:
            self.send_response(401)
        elif header != "Bearer right":
            self.send_response(403)
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps({"ray_version": "2.60.0", "version": "4", "session_name": "s"}).encode())
            return
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def fake_dashboard() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Auth)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize(
    ("token", "expected"), [(None, "no token was found"), ("wrong", "rejected the authentication")]
)
def test_authentication_failures_are_one_line(
    fake_dashboard: str,
    token: str | None,
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A fresh process: Ray caches a token it has loaded once, so earlier tests in this process must not leak in.
    env = {k: v for k, v in os.environ.items() if k not in (auth.MODE_ENV, auth.TOKEN_PATH_ENV, auth.TOKEN_ENV)}
    env["HOME"] = str(tmp_path)
    if token:
        env[auth.TOKEN_ENV] = token
    proc = subprocess.run(
        [sys.executable, "-m", "reward_search.cli", "jobs", "list", "--address", fake_dashboard],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and expected in err and "RAY_AUTH_TOKEN" in err and "Traceback" not in err


def test_right_token_is_sent(fake_dashboard: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(auth.MODE_ENV, raising=False)
    monkeypatch.setenv(auth.TOKEN_ENV, "right")
    _client, url, token = jobs.connect(fake_dashboard)
    assert url == fake_dashboard and token.source == "$RAY_AUTH_TOKEN"


def test_unreachable_address_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from reward_search.testing.local_head import free_port

    assert main(["jobs", "status", "some-id", "--address", f"127.0.0.1:{free_port()}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot reach the Ray dashboard" in err


def test_address_is_required_and_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    with pytest.raises(UserError, match="--address"):
        jobs.normalise_address(None)
    assert jobs.normalise_address("head:8265/") == "http://head:8265"
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "http://h:1")
    assert jobs.normalise_address(None) == "http://h:1"


def test_exit_codes() -> None:
    assert jobs.exit_code("SUCCEEDED") == 0
    assert jobs.exit_code("FAILED") == jobs.exit_code("STOPPED") == 1
