"""Experiment tracking: the smoke search logged to a local MLflow file store and read back through MLflow's client."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from reward_search.config import load_config
from reward_search.ops.tracking import SearchTracking, guarded, start_tracking
from reward_search.testing.local_head import free_port

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "experiments" / "smoke.yaml"


@pytest.fixture(scope="module")
def tracked(smoke_run, tmp_path_factory):
    """The session's real smoke search (tests/conftest.py smoke_run: 2 rounds x 2 candidates, `tracking.kind: mlflow`
    into <run dir>/mlruns, then finalize): (store folder, done entries, scratch folder)."""
    from reward_search.search.leaderboard import load_entries

    entries = load_entries(smoke_run)
    done = [e for e in entries if e.status == "done"]
    assert len(done) == len(entries) == 4, [(e.name, e.status, e.reasons) for e in entries]
    with pytest.MonkeyPatch.context() as patch:  # the client reads the run's file store, as the search wrote it
        patch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        yield smoke_run / "mlruns", done, tmp_path_factory.mktemp("tracked")


def _search_experiment(client):
    """The store's one experiment besides MLflow's Default: the search's (named after the run, here its folder)."""
    experiments = [e for e in client.search_experiments() if e.name != "Default"]
    assert len(experiments) == 1, [e.name for e in experiments]
    return experiments[0]


@pytest.mark.slow
def test_the_smoke_search_becomes_nested_mlflow_runs(tracked):
    from mlflow import MlflowClient

    store, done, tmp_path = tracked
    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    experiment = _search_experiment(client)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == sorted(e.name for e in done)
    for run, entry in ((r, next(e for e in done if e.name == r.info.run_name)) for r in children):
        assert run.info.status == "FINISHED"
        assert run.data.params["candidate_id"] == entry.candidate_id
        assert run.data.params["training/steps"] == "2"
        assert run.data.metrics["selection_accuracy"] == entry.accuracy
        assert run.data.metrics["selection_gold_logprob"] == pytest.approx(entry.gold_logprob)
        curve = client.get_metric_history(run.info.run_id, "train/reward")
        assert sorted(m.step for m in curve) == [1, 2]  # the per-step training curve
        source = client.download_artifacts(run.info.run_id, f"candidate/{entry.name}.py", str(tmp_path / "dl"))
        assert Path(source).read_text() == entry.source
    table = client.download_artifacts(parent.info.run_id, "leaderboard.json", str(tmp_path / "dl"))
    rows = json.loads(Path(table).read_text())
    assert sorted(r[rows["columns"].index("candidate_id")] for r in rows["data"]) == sorted(
        e.candidate_id for e in done
    )
    assert parent.data.tags["selection.metric"] == "accuracy"


def _page_text(browser: str, url: str, profile: Path, screenshot: Path | None = None) -> str:
    """The visible text of `url` after headless Chromium has run its scripts (and a screenshot, when asked)."""
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
    common += ["--disable-background-networking", "--disable-component-update", f"--user-data-dir={profile}"]
    common += ["--virtual-time-budget=30000", "--window-size=1400,1000"]
    if screenshot is not None:
        shot = subprocess.run([*common, f"--screenshot={screenshot}", url], capture_output=True, timeout=180)
        assert shot.returncode == 0 and screenshot.is_file(), shot.stderr[-2000:]
    page = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=180)
    assert page.returncode == 0, page.stderr[-2000:]
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", page.stdout, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.mark.slow
def test_the_mlflow_ui_shows_the_search_and_its_trials(tracked):
    """`mlflow ui` (the full package, from its own environment: scripts/ensure_mlflow_ui.sh) over the run's store,
    rendered in headless Chromium: the search's run lists its trials, and a trial's page names its candidate."""
    from mlflow import MlflowClient

    store, done, tmp_path = tracked
    mlflow_ui = REPO / os.environ.get("MLFLOW_UI_VENV", ".venv-mlflow-ui") / "bin" / "mlflow"
    if not mlflow_ui.is_file():
        pytest.fail(f"{mlflow_ui} is missing: run scripts/ensure_mlflow_ui.sh (make test does)")
    browser = shutil.which("chromium")
    if browser is None:
        pytest.fail("chromium is not installed: run scripts/ensure_chromium.sh (make test does)")
    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    experiment = _search_experiment(client)
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    child = next(r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id)

    port = free_port()
    env = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"}
    command = [str(mlflow_ui), "ui", "--backend-store-uri", store.resolve().as_uri(), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1"]
    log = (tmp_path / "mlflow_ui.log").open("w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            assert server.poll() is None, (tmp_path / "mlflow_ui.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            assert time.time() < deadline, "mlflow ui did not answer /health within 120 s"
            time.sleep(0.5)
        experiment_page = f"{base}/#/experiments/{experiment.experiment_id}/runs"
        shot = tmp_path / "mlflow_ui.png"
        listing = _page_text(browser, experiment_page, tmp_path / "profile", shot)
        assert parent.info.run_name in listing, listing[:2000]
        assert f"{len(runs)} matching runs" in listing, listing[:2000]  # the search's run and its nested trials
        trial_page = f"{base}/#/experiments/{experiment.experiment_id}/runs/{child.info.run_id}"
        trial = _page_text(browser, trial_page, tmp_path / "profile")
        assert child.info.run_name in trial and child.info.run_name in {e.name for e in done}, trial[:2000]
        assert child.data.params["candidate_id"] in trial, trial[:2000]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
        log.close()


def test_an_unreachable_tracking_uri_warns_once_and_tracking_never_raises(tmp_path, capsys):
    config = load_config(SMOKE, ["tracking.kind=mlflow", f"tracking.uri=http://127.0.0.1:{free_port()}"])
    tracking = start_tracking(config, tmp_path)
    assert tracking.callbacks == [] and tracking.parent_run_id is None
    err = capsys.readouterr().err
    assert err.count("warning: tracking switched off") == 1 and "unreachable" in err
    tracking.log_leaderboard([], "accuracy")  # a no-op, no error
    calls = []
    broken = SearchTracking(kind="mlflow")
    assert guarded(broken.warn, "logging", lambda: 1 / 0) is None
    assert guarded(broken.warn, "logging", lambda: calls.append(1)) is None and calls == []  # off after a failure
    assert capsys.readouterr().err.count("warning") == 1


def test_tracking_without_the_extra_is_one_line_and_exit_2(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['mlflow'] = None\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    command = [sys.executable, "-m", "reward_search.cli", "run", str(SMOKE), "--set", "tracking.kind=mlflow"]
    command += ["--set", f"run.storage_path={tmp_path}"]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "tracking.kind: mlflow needs the optional extra 'mlflow'" in lines[0], proc.stderr


def test_a_python_without_the_project_environment_gets_one_line_naming_the_fix(tmp_path):
    from reward_search.ops.jobs import ENVIRONMENT_FIX, missing_module_hint

    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['yaml'] = None\nsys.modules['ray'] = None\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    command = [sys.executable, "-m", "reward_search.cli", "run", str(SMOKE), "--set", f"run.storage_path={tmp_path}"]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert "cannot import yaml" in lines[0] and ENVIRONMENT_FIX in lines[0]
    # what `submit --follow` prints after a job died on the head's Python (the traceback Ray reports)
    logs = "Traceback (most recent call last):\n  ...\nModuleNotFoundError: No module named 'ray'\n"
    hint = missing_module_hint("job-1", "Job entrypoint command failed with exit code 1", logs)
    assert hint is not None and "cannot import ray" in hint and ENVIRONMENT_FIX in hint
    assert missing_module_hint("job-2", "Job entrypoint command failed with exit code 1", "OOM") is None
    none = missing_module_hint("job-3", "Job entrypoint command failed with exit code 127", "sh: 1: python: not found")
    assert none is not None and "no `python` on its PATH" in none and ENVIRONMENT_FIX in none


@pytest.mark.slow
def test_wandb_offline_through_tunes_callback(tmp_path, monkeypatch):
    """W&B through Ray Tune's WandbLoggerCallback, offline: each trial's run is written under the run directory."""
    import ray
    from ray import tune

    # start_tracking sets these in the process (as a search's driver would); set here through monkeypatch to the
    # same values so they are gone after the test: left in an xdist worker, WANDB_MODE=offline makes transformers
    # print "[INFO] Running in WANDB offline mode" on the stdout of every later CLI subprocess (a `--json` reader
    # then fails: test_screening and test_resume_exact in CI)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    config = load_config(SMOKE, ["tracking.kind=wandb", "run.name=wb"])
    tracking = start_tracking(config, tmp_path)
    assert tracking.kind == "wandb" and len(tracking.callbacks) == 1

    def trainable(params: dict) -> None:
        for step in range(1, 3):
            tune.report({"selection_accuracy": 0.1 * step * params["x"], "step": step})

    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            trainable,
            param_space={"x": tune.grid_search([1, 2])},
            run_config=tune.RunConfig(storage_path=str(tmp_path / "tune"), callbacks=tracking.callbacks, verbose=0),
        )
        assert not tuner.fit().errors
    finally:
        ray.shutdown()
    runs = sorted((tmp_path / "wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 2, list((tmp_path / "wandb").rglob("*"))[:20]
    for run in runs:
        files = list(run.glob("*.wandb"))
        assert files and files[0].stat().st_size > 0
