"""The Jobs path against a real local Ray head (loopback, authentication disabled for this throwaway cluster).

The head runs with its own temp dir and ports; teardown kills only the processes naming that temp dir and their
descendants (never `ray stop`, which would end other Ray instances on the machine), even when a test fails.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reward_search.ops.metrics import METRICS, PREFIX, exported_name
from reward_search.testing.local_head import LocalHead, scrape

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def head() -> Iterator[LocalHead]:
    cluster = LocalHead(num_cpus=2)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        assert not cluster.processes()


def _cli(head: LocalHead, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reward_search.cli", *args],
        cwd=REPO,
        env=head.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _names(text: str, run: str | None = None) -> set[str]:
    """Project metric names on a Prometheus page (only samples whose run id or run name is `run`, when given)."""
    names = set()
    for match in re.finditer(r"^(ray_reward_search_\w+?)(?:\{([^}]*)\})? ", text, re.M):
        labels = match.group(2) or ""
        if run is None or f'run="{run}"' in labels or f'run_name="{run}"' in labels:
            names.add(match.group(1))
    return names


class Scraper:
    """Scrapes the head's metrics endpoint every second in the background (driver gauges vanish when it exits)."""

    def __init__(self, url: str, run: str) -> None:
        self.url, self.run, self.seen, self._stop = url, run, set(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.seen |= _names(scrape(self.url), self.run)
            self._stop.wait(1.0)

    def __enter__(self) -> Scraper:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(10)


def test_metrics_reach_the_prometheus_endpoint(head: LocalHead) -> None:
    code = (
        "import ray, time, sys\n"
        "from reward_search.ops.metrics import SearchMetrics\n"
        f"ray.init(address={head.gcs_address!r}, log_to_driver=False)\n"
        "m = SearchMetrics('metrics-test')\n"
        "m.proposed(3); m.validated(True); m.validated(False, 'probes'); m.trial_started(); m.trial_finished('done')\n"
        "m.trial_started(); m.trial_finished('failed'); m.best(0.25); m.best(0.1); m.round(2)\n"
        "m.llm_usage(1200, 0.03); m.gpu_hours(0.5)\n"
        "print('recorded', flush=True); sys.stdin.readline()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=head.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "recorded"
        wanted = {exported_name(PREFIX + m.name, m.kind) for m in METRICS}
        deadline, text = time.monotonic() + 60, ""
        while time.monotonic() < deadline and not wanted <= _names(text, "metrics-test"):
            time.sleep(1)
            text = scrape(head.metrics_url)
        assert wanted <= _names(text, "metrics-test"), f"missing: {sorted(wanted - _names(text, 'metrics-test'))}"
        best = re.search(
            r'^ray_reward_search_best_selection_accuracy\{[^}]*run="metrics-test"[^}]*\} (\S+)', text, re.M
        )
        assert best and float(best.group(1)) == 0.25
        assert re.search(r'ray_reward_search_candidates_rejected_total\{[^}]*stage="probes"', text)
    finally:
        proc.communicate("\n", timeout=30)


def test_live_status_reads_the_leaderboard_actor(head: LocalHead, tmp_path: Path) -> None:
    code = (
        "import json, sys, ray\n"
        "from reward_search.search.leaderboard import leaderboard_actor, namespace_for\n"
        f"ray.init(address={head.gcs_address!r}, namespace=namespace_for('live-run'), log_to_driver=False)\n"
        f"board = leaderboard_actor({str(tmp_path)!r}, 'live-run')\n"
        "cand = {'name': 'r1', 'source': 'def r1(completions, **kw):\\n    return [0.0] * len(completions)\\n',\n"
        "        'description': 'd', 'origin': {'proposer': 'test', 'round': 1, 'parents': []}}\n"
        "ray.get(board.add_candidate.remote(cand, 1, 'accepted', []))\n"
        "print('ready', flush=True); sys.stdin.readline()\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", code], env=head.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout.readline().strip() == "ready"
        reader = (
            "import json\nfrom reward_search.search.live import live_searches, live_status, format_live_status\n"
            f"s = live_status({head.gcs_address!r}, 'live-run')\n"
            f"rows = live_searches({head.gcs_address!r})\n"
            "print(json.dumps({'summary': s['summary'], 'names': [e['name'] for e in s['entries']],\n"
            "                  'live': [(r['run_id'], r['run_dir']) for r in rows]}))\n"
            "print(format_live_status(s))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", reader], env=head.env(), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
        first, *rest = done.stdout.strip().splitlines()
        data = json.loads(first)
        assert data["names"] == ["r1"] and data["summary"]["candidates"] == 1
        assert ["live-run", str(tmp_path)] in data["live"]  # `status --address` lists it with its run directory
        assert rest[0].startswith("run live-run (live): round 1, 1 candidates")
        missing = subprocess.run(
            [
                sys.executable,
                "-c",
                f"from reward_search.search.live import live_status; live_status({head.gcs_address!r}, 'nope')",
            ],
            env=head.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "no running search named 'nope'" in missing.stderr
    finally:
        owner.communicate("\n", timeout=30)


def test_submit_follow_runs_the_smoke_search(head: LocalHead, tmp_path: Path) -> None:
    from reward_search.search.leaderboard import load_entries

    args = [
        "submit",
        "experiments/smoke.yaml",
        "--address",
        head.dashboard_url,
        "--follow",
        "--set",
        "search.dashboard=false",
        "--set",
        f"run.storage_path={tmp_path}",
        "--set",
        "run.name=ops-smoke",
        "--set",
        "finalize.enabled=false",
    ]
    with Scraper(head.metrics_url, run="ops-smoke") as scraper:
        done = _cli(head, *args)
    out = done.stdout
    assert done.returncode == 0, (out + done.stderr)[-4000:]
    job_id = re.search(r"^job: (\S+)", out, re.M).group(1)
    assert job_id.startswith("reward-search-ops-smoke-")
    assert f"dashboard: {head.dashboard_url}/#/jobs/{job_id}" in out
    assert f"run directory (on the cluster): {tmp_path}/ops-smoke" in out
    assert "round 1: " in out and " started" in out  # the driver's progress lines streamed through --follow
    run_dir = tmp_path / "ops-smoke"
    assert (run_dir / "config.yaml").is_file() and (run_dir / "manifest.json").is_file()
    entries = load_entries(run_dir)
    assert len([e for e in entries if e.status == "done"]) == 4
    assert {e.round for e in entries} == {1, 2}
    assert all(e.trial_dir and Path(e.trial_dir).is_dir() for e in entries if e.status == "done")

    status = _cli(head, "jobs", "status", job_id, "--address", head.dashboard_url, "--json")
    info = json.loads(status.stdout)
    assert info["status"] == "SUCCEEDED" and info["metadata"]["run_dir"] == str(run_dir)
    assert info["metadata"]["experiment"] == "experiments/smoke.yaml"
    listed = _cli(head, "jobs", "list", "--address", head.dashboard_url)
    assert job_id in listed.stdout and "SUCCEEDED" in listed.stdout
    logs = _cli(head, "jobs", "logs", job_id, "--address", head.dashboard_url)
    assert "round 2: " in logs.stdout and " started" in logs.stdout

    # What the driver emits once wired (see reward_search/ops/metrics.py); counters outlive the driver.
    expected = {
        exported_name(PREFIX + n, k)
        for n, k in (
            ("candidates_proposed", "counter"),
            ("candidates_accepted", "counter"),
            ("trials_finished", "counter"),
            ("trials_running", "gauge"),
            ("round", "gauge"),
            ("best_selection_accuracy", "gauge"),
        )
    }
    deadline = time.monotonic() + 15
    while not expected <= scraper.seen and time.monotonic() < deadline:
        scraper.seen |= _names(scrape(head.metrics_url), "ops-smoke")
        time.sleep(1)
    assert expected <= scraper.seen, f"metrics not exported by the driver: {sorted(expected - scraper.seen)}"


def test_stop_ends_a_running_job_and_follow_exits_1(head: LocalHead, tmp_path: Path) -> None:
    submitted = _cli(
        head,
        "submit",
        "experiments/smoke.yaml",
        "--address",
        head.dashboard_url,
        "--set",
        f"run.storage_path={tmp_path}",
        "--set",
        "run.name=ops-stop",
    )
    assert submitted.returncode == 0, submitted.stderr[-2000:]
    job_id = re.search(r"^job: (\S+)", submitted.stdout, re.M).group(1)
    assert "jobs logs" in submitted.stdout
    stopped = _cli(head, "jobs", "stop", job_id, "--address", head.dashboard_url)
    assert stopped.returncode == 0 and job_id in stopped.stdout
    followed = _cli(head, "jobs", "logs", job_id, "--follow", "--address", head.dashboard_url, timeout=120)
    assert followed.returncode == 1 and "STOPPED" in followed.stderr
    unknown = _cli(head, "jobs", "status", "no-such-job", "--address", head.dashboard_url)
    assert unknown.returncode == 2 and "no job no-such-job" in unknown.stderr


def test_submit_follow_to_a_head_started_outside_the_venv_exits_1_naming_the_fix(tmp_path: Path) -> None:
    """`.venv/bin/ray start --head` from a shell that never activated the venv: the job's `python` is another one
    (or none), so the job dies on its first import; `submit --follow` says what to do in one line and exits 1."""
    from reward_search.ops.jobs import ENVIRONMENT_FIX

    outside = LocalHead(num_cpus=1, venv_on_path=False)
    try:
        outside.start()
        args = ["submit", "experiments/smoke.yaml", "--address", outside.dashboard_url, "--follow"]
        done = _cli(outside, *args, "--set", f"run.storage_path={tmp_path}", "--set", "run.name=outside", timeout=300)
    finally:
        outside.stop()
    assert done.returncode == 1, (done.stdout + done.stderr)[-3000:]
    hints = [line for line in done.stderr.splitlines() if ENVIRONMENT_FIX in line]
    assert len(hints) == 1 and "failed: the head" in hints[0], done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "outside" / "leaderboard.parquet").exists()  # nothing ran
