"""The Grafana dashboard in cluster/grafana: every panel's query names metrics (and labels) that Ray really exports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reward_search.ops.metrics import METRICS, PREFIX, exported_name

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "cluster" / "grafana" / "reward_search_dashboard.json"
_NAME = re.compile(r"\b(ray_[A-Za-z0-9_]+)\b")
_BY = re.compile(r"\bby\s*\(([^)]*)\)")


def _queries(dashboard: dict) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return exprs


def _samples(text: str) -> dict[str, set[str]]:
    """Metric name -> the label names its samples carry, from a Prometheus text page."""
    found: dict[str, set[str]] = {}
    for match in re.finditer(r"^(ray_\w+?)(?:\{([^}]*)\})? ", text, re.M):
        labels = set(re.findall(r'(\w+)="', match.group(2) or ""))
        found.setdefault(match.group(1), set()).update(labels)
    return found


def test_the_dashboard_is_in_the_form_ray_embeds():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    assert any(v["name"] == "datasource" and v["type"] == "datasource" for v in dashboard["templating"]["list"])
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"] == "${datasource}" and panel["targets"], panel["title"]
    used = {name for expr in _queries(dashboard) for name in _NAME.findall(expr)}
    assert used == {exported_name(PREFIX + m.name, m.kind) for m in METRICS}  # every project metric has a panel


@pytest.mark.slow
def test_every_panel_query_names_metrics_the_endpoint_exports():
    from reward_search.testing.local_head import LocalHead, scrape

    head = LocalHead(num_cpus=1)
    code = (
        "import ray, sys\n"
        "from reward_search.ops.metrics import SearchMetrics\n"
        f"ray.init(address={head.gcs_address!r}, log_to_driver=False)\n"
        "m = SearchMetrics('grafana-test', 'grafana')\n"
        "m.proposed(3); m.validated(True); m.validated(False, 'probes'); m.trial_started(); m.trial_finished('done')\n"
        "m.trial_started(); m.trial_finished('failed'); m.best(0.25); m.round(2); m.llm_usage(100, 0.01)\n"
        "m.gpu_hours(0.5)\n"
        "print('recorded', flush=True); sys.stdin.readline()\n"
    )
    try:
        head.start(timeout=300)  # a loaded host can take minutes to start a head
        proc = subprocess.Popen(
            [sys.executable, "-c", code], env=head.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout.readline().strip() == "recorded"
            dashboard = json.loads(DASHBOARD.read_text())
            wanted = {name for expr in _queries(dashboard) for name in _NAME.findall(expr)}
            deadline, exported = time.monotonic() + 90, {}
            while time.monotonic() < deadline and not wanted <= set(exported):
                time.sleep(1)
                exported = _samples(scrape(head.metrics_url))
            assert wanted <= set(exported), f"not exported: {sorted(wanted - set(exported))}"
            for panel in dashboard["panels"]:
                for target in panel["targets"]:
                    names = _NAME.findall(target["expr"])
                    labels = set().union(*(exported[n] for n in names))
                    grouped = {g.strip() for by in _BY.findall(target["expr"]) for g in by.split(",") if g.strip()}
                    filtered = set(re.findall(r"(\w+)=~", target["expr"]))
                    missing = (grouped | filtered) - labels
                    assert not missing, f"{panel['title']}: labels {sorted(missing)} not on {names}"
        finally:
            proc.communicate("\n", timeout=30)
    finally:
        head.stop()
