"""Submit a search to a Ray cluster as a Ray Job, and list, inspect, tail and stop such jobs.

The job ships the project as its `working_dir` (or, for an installed package, the package as a `py_module` and the
experiment file in a small staging folder) and runs `python -m reward_search.cli run EXPERIMENT --set ...` on the
head. The run directory must be on storage every node sees, because trial folders are written by the workers: a
relative `run.storage_path` would land in the job's temporary working directory, so it is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from reward_search.errors import UserError
from reward_search.ops.auth import Token, find_token, missing_token_message, rejected_token_message

# Never uploaded with the working_dir (gitignore syntax, relative to the project root).
WORKING_DIR_EXCLUDES: tuple[str, ...] = (
    ".venv/",
    "venv/",
    ".git/",
    "runs/",
    "benchmarks/results/",
    "out/",
    "build/",
    "dist/",
    "*.egg-info/",
    "__pycache__/",
    "*.pyc",
    ".pytest_cache/",
    ".ruff_cache/",
    ".mypy_cache/",
    ".ipynb_checkpoints/",
)
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
METADATA_TOOL = "reward-search"
# Secrets a job needs, read from the submitter's environment. They travel as a small py_module (a package on the
# job's path on every node), never as runtime_env env_vars, metadata or arguments: the dashboard and `jobs status`
# show those. The job puts them into its own processes' environment (`apply_job_secrets`).
SECRET_VARS = ("HF_TOKEN",)
SECRETS_PACKAGE = "reward_search_job_secrets"


@dataclass(frozen=True)
class SubmitOptions:
    """What `reward-search submit` was asked for, beyond the experiment and its overrides."""

    runtime_env: dict[str, Any] = field(default_factory=dict)  # merged over the generated one
    pip: tuple[str, ...] = ()
    entrypoint_num_cpus: float | None = None
    entrypoint_num_gpus: float | None = None
    entrypoint_resources: dict[str, float] | None = None
    submission_id: str | None = None


@dataclass(frozen=True)
class JobPlan:
    """A submission ready to send: entrypoint, runtime env, id and metadata, and where the run will land."""

    submission_id: str
    entrypoint: str
    runtime_env: dict[str, Any]
    metadata: dict[str, str]
    run_dir: str
    staging_dir: str | None = None  # a temporary folder to delete after submitting
    entrypoint_num_cpus: float | None = None  # CPUs the driver holds on the head (search.driver_cpus by default)
    secrets_dir: str | None = None  # the temporary secrets package, deleted after submitting


@dataclass(frozen=True)
class Submitted:
    job_id: str
    dashboard_url: str
    run_dir: str


# ---------------------------------------------------------------------------------------------- addresses, client


def normalise_address(address: str | None) -> str:
    """The dashboard's HTTP address: `--address`, else $RAY_API_SERVER_ADDRESS / an http $RAY_ADDRESS."""
    import os

    address = address or os.environ.get("RAY_API_SERVER_ADDRESS") or ""
    if not address and os.environ.get("RAY_ADDRESS", "").startswith(("http://", "https://")):
        address = os.environ["RAY_ADDRESS"]
    if not address:
        raise UserError(
            "no cluster address: give --address http://HEAD:8265 (the Ray dashboard) or set RAY_API_SERVER_ADDRESS"
        )
    if "://" not in address:
        address = f"http://{address}"
    if not address.startswith(("http://", "https://")):
        raise UserError(f"--address {address}: give the Ray dashboard's HTTP address, e.g. http://HEAD:8265")
    return address.rstrip("/")


@contextlib.contextmanager
def cluster_errors(address: str, token: Token | None) -> Iterator[None]:
    """Turn unreachable clusters and authentication failures into one-line user errors."""
    import requests
    from ray.exceptions import AuthenticationError

    try:
        yield
    except AuthenticationError as exc:
        text = str(exc)
        if text.startswith("Authentication failed") or "403" in text.split("\n", 1)[0]:
            raise UserError(rejected_token_message(address, token)) from None
        raise UserError(missing_token_message(address)) from None
    except (ConnectionError, requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise UserError(
            f"cannot reach the Ray dashboard at {address} ({type(exc).__name__}); is the cluster up and "
            "the address the dashboard's (port 8265 by default)?"
        ) from None


def connect(address: str | None) -> tuple[Any, str, Token | None]:
    """A JobSubmissionClient for the cluster (token attached when one is found), its address and the token."""
    from ray.job_submission import JobSubmissionClient

    url = normalise_address(address)
    token = find_token()
    with cluster_errors(url, token):
        client = JobSubmissionClient(url, headers=token.headers() if token else None)
    return client, url, token


def job_url(address: str, job_id: str) -> str:
    return f"{address}/#/jobs/{job_id}"


# ---------------------------------------------------------------------------------------------- planning


def project_root() -> Path | None:
    """The source checkout holding this package (with pyproject.toml), or None for an installed package."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "reward_search").is_dir() else None


def load_runtime_env(path: str | None) -> dict[str, Any]:
    """A runtime_env from a YAML or JSON file (a mapping), or {}."""
    if not path:
        return {}
    import yaml

    file = Path(path)
    if not file.is_file():
        raise UserError(f"--runtime-env {path}: no such file")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"--runtime-env {path}: not YAML/JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"--runtime-env {path}: expected a mapping of runtime_env fields")
    return data


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-").lower() or "run"


def new_submission_id(run_name: str) -> str:
    """Readable and unique: reward-search-<run>-<utc time>-<4 hex>."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"reward-search-{_slug(run_name)[:40]}-{stamp}-{uuid.uuid4().hex[:4]}"


def cluster_run_dir(config: Any) -> str:
    """The run directory as the cluster sees it; refuses a relative storage path (it would not be shared)."""
    storage = str(config.run.storage_path)
    if "://" in storage:
        raise UserError(
            f"run.storage_path {storage}: a URI is not supported; mount the bucket (e.g. gcsfuse, "
            "mountpoint-s3) or an NFS volume on every node and give its path"
        )
    if not storage.startswith("/"):
        raise UserError(
            f"run.storage_path {storage!r} is relative: on a cluster the run would land in the job's temporary "
            "working directory on one node; set --set run.storage_path=/PATH on storage every node sees "
            "(NFS, a PVC, a mounted bucket)"
        )
    return f"{storage.rstrip('/')}/{config.run.name}"


def _merge_runtime_env(generated: dict[str, Any], user: dict[str, Any], pip: Sequence[str]) -> dict[str, Any]:
    env = dict(generated)
    for key, value in user.items():
        if key == "env_vars":
            env["env_vars"] = {**env.get("env_vars", {}), **value}
        elif key == "excludes":
            env["excludes"] = [*env.get("excludes", []), *value]
        elif key == "py_modules":
            env["py_modules"] = [*env.get("py_modules", []), *value]
        else:
            env[key] = value
    if pip:
        current = env.get("pip") or []
        if isinstance(current, dict):
            current = {**current, "packages": [*current.get("packages", []), *pip]}
        else:
            current = [*current, *pip]
        env["pip"] = current
    return env


def plan_submission(experiment: str, overrides: Sequence[str], options: SubmitOptions) -> JobPlan:
    """Validate the experiment locally and build the job: working_dir, entrypoint, id, metadata, run directory."""
    from reward_search.config import load_config

    file = Path(experiment).expanduser()
    if not file.is_file():
        raise UserError(f"{experiment}: no such experiment file")
    config = load_config(file, list(overrides))  # config errors surface here, before anything is uploaded
    run_dir = cluster_run_dir(config)
    root = project_root()
    staging: str | None = None
    file = file.resolve()
    if root is not None and file.is_relative_to(root):
        remote_experiment = file.relative_to(root).as_posix()
        generated: dict[str, Any] = {"working_dir": str(root), "excludes": list(WORKING_DIR_EXCLUDES)}
    else:  # an installed package, or an experiment outside the checkout: ship the package and the file
        staging = tempfile.mkdtemp(prefix="reward-search-job-")
        remote_experiment = file.name
        shutil.copy2(file, Path(staging) / file.name)
        package = Path(__file__).resolve().parents[1]
        generated = {"working_dir": staging, "py_modules": [str(package)], "excludes": ["__pycache__/", "*.pyc"]}
    generated["env_vars"] = {"PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    runtime_env = _merge_runtime_env(generated, options.runtime_env, options.pip)
    secrets = secrets_package(os.environ)
    if secrets is not None:
        runtime_env["py_modules"] = [*runtime_env.get("py_modules", []), str(Path(secrets) / SECRETS_PACKAGE)]
    args = ["python", "-m", "reward_search.cli", "run", remote_experiment]
    for item in overrides:
        args += ["--set", item]
    submission_id = options.submission_id or new_submission_id(config.run.name)
    metadata = {
        "tool": METADATA_TOOL,
        "experiment": remote_experiment,
        "run_name": config.run.name,
        "run_dir": run_dir,
        "overrides": json.dumps(list(overrides)),
    }
    cpus = options.entrypoint_num_cpus if options.entrypoint_num_cpus is not None else config.search.driver_cpus
    return JobPlan(submission_id, shlex.join(args), runtime_env, metadata, run_dir, staging, cpus or None, secrets)


def secrets_package(environ: Mapping[str, str]) -> str | None:
    """A temporary folder holding the package `reward_search_job_secrets` with the set SECRET_VARS, or None."""
    found = {name: environ[name] for name in SECRET_VARS if environ.get(name)}
    if not found:
        return None
    folder = tempfile.mkdtemp(prefix="reward-search-secrets-")
    package = Path(folder) / SECRETS_PACKAGE
    package.mkdir(mode=0o700)
    (package / "__init__.py").write_text('"""Secrets of one reward-search job (written by `submit`)."""\n')
    data = package / "secrets.json"
    data.touch(mode=0o600)
    data.write_text(json.dumps(found))
    return folder


def apply_job_secrets() -> list[str]:
    """In a submitted job's processes: set the secrets it was given into os.environ (unset ones only); their names."""
    import importlib.util

    spec = importlib.util.find_spec(SECRETS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return []
    data = Path(next(iter(spec.submodule_search_locations))) / "secrets.json"
    if not data.is_file():
        return []
    applied = []
    for name, value in json.loads(data.read_text()).items():
        if name in SECRET_VARS and not os.environ.get(name):
            os.environ[name] = value
            applied.append(name)
    return applied


# ---------------------------------------------------------------------------------------------- operations


def submit(address: str | None, experiment: str, overrides: Sequence[str], options: SubmitOptions) -> Submitted:
    """Submit a search; returns the job id, its dashboard page and the run directory on the cluster."""
    plan = plan_submission(experiment, overrides, options)
    client, url, token = connect(address)
    try:
        with cluster_errors(url, token):
            try:
                job_id = client.submit_job(
                    entrypoint=plan.entrypoint,
                    submission_id=plan.submission_id,
                    runtime_env=plan.runtime_env,
                    metadata=plan.metadata,
                    entrypoint_num_cpus=plan.entrypoint_num_cpus,
                    entrypoint_num_gpus=options.entrypoint_num_gpus,
                    entrypoint_resources=options.entrypoint_resources,
                )
            except RuntimeError as exc:  # the server refused the request (duplicate id, bad runtime_env, ...)
                raise UserError(f"job submission refused by {url}: {_server_message(exc)}") from None
    finally:
        for folder in (plan.staging_dir, plan.secrets_dir):
            if folder:
                shutil.rmtree(folder, ignore_errors=True)
    return Submitted(job_id, job_url(url, job_id), plan.run_dir)


def _server_message(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "")


@contextlib.contextmanager
def _known_job(job_id: str, url: str) -> Iterator[None]:
    try:
        yield
    except RuntimeError as exc:
        if "404" in str(exc) or "does not exist" in str(exc):
            raise UserError(f"no job {job_id} on {url} (see `reward-search jobs list --address {url}`)") from None
        raise UserError(f"{url}: {_server_message(exc)}") from None


def job_info(address: str | None, job_id: str) -> dict[str, Any]:
    """Status, message, times, entrypoint and metadata of one job."""
    client, url, token = connect(address)
    with cluster_errors(url, token), _known_job(job_id, url):
        info = client.get_job_info(job_id)
    return _info_dict(info, url)


def _info_dict(info: Any, url: str) -> dict[str, Any]:
    job_id = info.submission_id or info.job_id
    return {
        "job_id": job_id,
        "status": str(getattr(info.status, "value", info.status)),
        "message": info.message,
        "entrypoint": info.entrypoint,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "metadata": dict(info.metadata or {}),
        "dashboard_url": job_url(url, job_id) if job_id else url,
    }


def list_jobs(address: str | None, all_jobs: bool = False) -> list[dict[str, Any]]:
    """Submitted jobs, newest first; only reward-search's unless `all_jobs`."""
    client, url, token = connect(address)
    with cluster_errors(url, token):
        infos = client.list_jobs()
    rows = [_info_dict(i, url) for i in infos if i.submission_id]
    if not all_jobs:
        rows = [r for r in rows if r["metadata"].get("tool") == METADATA_TOOL]
    return sorted(rows, key=lambda r: r["start_time"] or 0, reverse=True)


def stop_job(address: str | None, job_id: str) -> bool:
    """Ask the cluster to stop a job; False when it had already ended."""
    client, url, token = connect(address)
    with cluster_errors(url, token), _known_job(job_id, url):
        return bool(client.stop_job(job_id))


def job_logs(address: str | None, job_id: str) -> str:
    client, url, token = connect(address)
    with cluster_errors(url, token), _known_job(job_id, url):
        return client.get_job_logs(job_id)


def follow(address: str | None, job_id: str, stream: TextIO | None = None, poll_s: float = 1.0) -> str:
    """Stream a job's logs until it ends; returns its final status."""
    client, url, token = connect(address)
    out = stream or sys.stdout

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            out.write(chunk)
            out.flush()

    with cluster_errors(url, token), _known_job(job_id, url):
        client.get_job_status(job_id)  # a clear error for an unknown id before tailing
        asyncio.run(tail())
        status = str(client.get_job_status(job_id).value)
        while status not in TERMINAL:  # the log stream can close a moment before the status flips
            time.sleep(poll_s)
            status = str(client.get_job_status(job_id).value)
    return status


ENVIRONMENT_FIX = (
    "activate the project's environment before starting Ray (`source .venv/bin/activate`, then `ray start --head`), "
    "or run the cluster from the project image (cluster/Dockerfile)"
)


def missing_module_line(module: str, executable: str) -> str:
    """One line for a Python that cannot import the project or its dependencies (a head started outside the venv)."""
    return f"this Python ({executable}) cannot import {module}: {ENVIRONMENT_FIX}"


def failure_hint(address: str | None, job_id: str) -> str | None:
    """For a failed job whose Python could not import a module: the line naming the fix, else None."""
    return missing_module_hint(job_id, str(job_info(address, job_id).get("message") or ""), job_logs(address, job_id))


def missing_module_hint(job_id: str, message: str, logs: str) -> str | None:
    """The fix line when a job's status message or the end of its logs shows a module its Python could not import."""
    for text in (message, logs[-4000:]):
        found = re.search(r"(?:No module named '|cannot import )([\w.]+)", text)
        if found:
            return f"job {job_id} failed: the head's Python cannot import {found.group(1)}: {ENVIRONMENT_FIX}"
        if re.search(r"\bpython: (?:command )?not found", text):  # no `python` at all on the head's PATH
            return f"job {job_id} failed: the head has no `python` on its PATH: {ENVIRONMENT_FIX}"
    return None


def exit_code(status: str) -> int:
    """0 for a job that succeeded, 1 for one that failed or was stopped."""
    return 0 if status == "SUCCEEDED" else 1
