"""A throwaway single-node Ray head on loopback, for tests and benchmarks of the Jobs path.

The dashboard and metrics endpoints listen on 127.0.0.1; Ray 2.60's GCS and raylet gRPC servers listen on every
interface whatever `--node-ip-address` says, so the head uses token authentication with a fresh random token
(passed through `RAY_AUTH_TOKEN` to the head, its job drivers and any client started with `env()`), or none with
`token=None`.

`ray stop` would kill every Ray process of the user on the machine, including other people's clusters, so the head
gets its own `--temp-dir` and free ports, and `stop()` ends only the processes whose command line names that temp
dir, together with their descendants (workers, the job supervisor and the job's driver).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from reward_search.errors import UserError


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalHead:
    """`ray start --head` on 127.0.0.1 with its own token (or none) and metrics exported every second."""

    num_cpus: int = 2
    temp_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rsray-", dir="/tmp")))
    gcs_port: int = field(default_factory=free_port)
    dashboard_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    token: str | None = field(default_factory=lambda: secrets.token_hex(24))
    # False: started as `.venv/bin/ray start --head` from a shell that never activated the venv, so job
    # entrypoints find another `python` (or none) on PATH, as a user's head can
    venv_on_path: bool = True
    log: list[str] = field(default_factory=list)

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def env(self) -> dict[str, str]:
        """The environment of the head, which its workers and job drivers inherit."""
        bin_dir = str(Path(sys.executable).parent)
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")}
        for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
            env.pop(name, None)
        if self.token:
            env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.token)
        else:
            env["RAY_AUTH_MODE"] = "disabled"
        env.update(RAY_USAGE_STATS_ENABLED="0", RAY_metrics_report_interval_ms="1000")
        others = [part for part in env.get("PATH", "").split(os.pathsep) if part and part != bin_dir]
        # `python` in the job entrypoint is this venv's, unless the head models one started outside it
        env["PATH"] = os.pathsep.join([bin_dir, *others] if self.venv_on_path else others)
        if not self.venv_on_path:
            env.pop("VIRTUAL_ENV", None)
        return env

    def start(self, timeout: float = 90.0) -> LocalHead:
        ports = [free_port() for _ in range(6)]
        cmd = [
            str(Path(sys.executable).parent / "ray"), "start", "--head",
            "--node-ip-address", "127.0.0.1", "--dashboard-host", "127.0.0.1",
            "--port", str(self.gcs_port), "--dashboard-port", str(self.dashboard_port),
            "--metrics-export-port", str(self.metrics_port),
            "--ray-client-server-port", str(ports[0]), "--node-manager-port", str(ports[1]),
            "--object-manager-port", str(ports[2]), "--dashboard-agent-listen-port", str(ports[3]),
            "--dashboard-agent-grpc-port", str(ports[4]), "--runtime-env-agent-port", str(ports[5]),
            "--num-cpus", str(self.num_cpus), "--num-gpus", "0", "--include-dashboard", "true",
            "--temp-dir", str(self.temp_dir), "--disable-usage-stats",
        ]  # fmt: skip
        done = subprocess.run(cmd, env=self.env(), capture_output=True, text=True, timeout=timeout)
        self.log.append(done.stdout + done.stderr)
        if done.returncode != 0:
            self.stop()
            raise UserError(f"ray start failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        self.wait_for_dashboard(timeout)
        return self

    def wait_for_dashboard(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                request = urllib.request.Request(f"{self.dashboard_url}/api/version")
                if self.token:
                    request.add_header("Authorization", f"Bearer {self.token}")
                with urllib.request.urlopen(request, timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise UserError(f"the dashboard at {self.dashboard_url} did not come up in {timeout:.0f}s")

    def processes(self) -> list:
        """Every live process of this head: those naming its temp dir, and all their descendants."""
        import psutil

        marker = str(self.temp_dir)
        found: dict[int, psutil.Process] = {}
        for proc in psutil.process_iter(["pid", "cmdline"]):
            cmdline = proc.info.get("cmdline") or []
            if any(marker in part for part in cmdline):
                found[proc.pid] = proc
                try:
                    for child in proc.children(recursive=True):
                        found[child.pid] = child
                except psutil.NoSuchProcess:
                    continue
        found.pop(os.getpid(), None)
        return list(found.values())

    def stop(self, grace: float = 10.0) -> None:
        """Terminate this head's processes (SIGTERM, then SIGKILL after `grace`) and remove its temp dir."""
        import psutil

        procs = self.processes()
        for proc in procs:
            try:
                proc.terminate()
            except psutil.NoSuchProcess:
                continue
        _, alive = psutil.wait_procs(procs, timeout=grace)
        for proc in alive:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                continue
        psutil.wait_procs(alive, timeout=grace)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> LocalHead:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def scrape(url: str, timeout: float = 5.0) -> str:
    """The Prometheus text of a metrics endpoint ('' when it does not answer)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.read().decode("utf-8", "replace")
    except OSError:
        return ""
