"""Shared fixtures: one model cache per test run (the embedded model is converted once), offline hub, and the one
real smoke search (`smoke_run`) that the report and tracking tests both read (docs/TESTS.md: the three layers)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_GSM8K = REPO.parent / "shared" / "data" / "gsm8k"
_SESSION_CACHE: list[str] = []
_SESSION_TEMP: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:  # each xdist worker's local Rays live in its own temp dir: `ray.init()` never joins another's
        _SESSION_TEMP.append(tempfile.mkdtemp(prefix=f"rs-{worker}-", dir="/tmp"))
        os.environ["RAY_TMPDIR"] = _SESSION_TEMP[-1]
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if "REWARD_SEARCH_TEST_CACHE" in os.environ:  # reuse a cache across runs while developing
        os.environ["REWARD_SEARCH_CACHE"] = os.environ["REWARD_SEARCH_TEST_CACHE"]
    elif worker:  # the controller's cache, inherited: the embedded model is converted once (builds are locked)
        pass
    else:
        _SESSION_CACHE.append(tempfile.mkdtemp(prefix="reward-search-cache-"))
        os.environ["REWARD_SEARCH_CACHE"] = _SESSION_CACHE[0]


# The longest tests (a CI run's --durations on 2 cores, setup included), started first so that no worker is left
# with one at the end: 356, 267 (with test_tracking.py's, the shared smoke run), 199, 132, 112, 100, 84, 77, 62 s.
LONGEST_FIRST = (
    "test_a_shortened_demo_leaderboard_is_not_all_tied",
    "test_report_files_images_and_links_resolve",
    "test_the_bomb_fails_in_its_trial_with_the_reprobe_reason",
    "test_finalize_after_a_small_search_and_resume",
    "test_two_gloo_workers_train_resume_after_a_kill_and_leave_one_worker_artefacts",
    "test_smoke_search_with_every_fidelity_switch_reports_its_fidelity_table",
    "test_killed_driver_resumes_without_retraining",
    "test_smoke_benchmark_runs_every_arm_through_the_real_search",
    "test_multi_node_gpu_placement_and_node_loss",
    "test_smoke_run_measures_every_stage",
)
# Files whose tests share one expensive fixture: xdist sends each such group to one worker as a whole (the scheduler
# below), so the fixture is built once per session. Every other test is its own unit of work.
SHARED_FIXTURE_GROUPS = {
    "tests/test_report.py": "smoke_run",  # the session's real smoke search (smoke_run), read by both files
    "tests/test_tracking.py": "smoke_run",
    "tests/test_reprobe_path.py": "bomb_run",
    "tests/test_damage.py": "interrupted_run",
    "tests/test_candidates_corpus.py": "corpus_session",
    "tests/test_ops_cluster.py": "local_head",
    "tests/test_kill_points.py": "kill_references",  # one unkilled reference search per variant
}


def _order(item: pytest.Item) -> tuple[int, int]:
    name = item.originalname if isinstance(item, pytest.Function) else item.name
    if name in LONGEST_FIRST:
        return (0, LONGEST_FIRST.index(name))
    return (1 if item.get_closest_marker("slow") else 2, 0)


def _uses_module_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    return info is not None and any(defs[-1].scope == "module" for defs in info.name2fixturedefs.values() if defs)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest tests first, then the other slow ones (a stable sort, the same on every xdist worker), so quick tests
    fill the workers' tails. Tests sharing a module-scoped fixture run back to back at their earliest member's
    place: pytest ends a module's fixtures as soon as a test of another module runs, so a split run would build
    the fixture twice. (xdist may still send them to both workers; `loadgroup` cannot keep them together under
    pytest 9.2, whose node ids no longer come from the attribute xdist 3.8 rewrites.)"""
    group = {id(item): item.module.__name__ if _uses_module_fixture(item) else "" for item in items}
    first: dict[str, tuple[int, int]] = {}
    for item in items:
        if group[id(item)]:
            first[group[id(item)]] = min(first.get(group[id(item)], _order(item)), _order(item))
    items.sort(key=lambda item: (first.get(group[id(item)]) or _order(item), group[id(item)]))


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """`-n N` (dist load) schedules single tests, except the groups above, which go to one worker each."""
    if config.getoption("dist", "load") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return SHARED_FIXTURE_GROUPS.get(nodeid.split("::", 1)[0], nodeid)

    config.option.loadscopereorder = False  # keep the longest-first order of pytest_collection_modifyitems
    return SharedFixtureScheduling(config, log)


def pytest_unconfigure(config: pytest.Config) -> None:
    for folder in _SESSION_CACHE + _SESSION_TEMP:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny():
    """The tiny random-init Llama with its 1,024-token tokenizer (fast enough for unit tests)."""
    from reward_search.training.models import load_model

    return load_model("random:tiny", device="cpu", seed=0)


@pytest.fixture(scope="session")
def embedded_dir() -> Path:
    """The embedded SmolLM2-135M converted from its GGUF file, once per test run."""
    from reward_search.training.models import embedded_model_dir

    return embedded_model_dir()


@pytest.fixture(scope="session")
def gsm8k_full() -> Path:
    """The full GSM8K from shared/ when present, else the shipped sample's folder."""
    if (SHARED_GSM8K / "train.jsonl").is_file():
        return SHARED_GSM8K
    from importlib import resources

    return Path(str(resources.files("reward_search.task.data").joinpath("gsm8k_sample")))


SMOKE_RUN_ARGS = (
    "--set",
    "search.rounds=2",
    "--set",
    "search.candidates_per_round=2",
    "--set",
    "finalize.seeds=2",
    "--set",
    "finalize.recipes=[{name: top2, kind: top_k, k: 2}, {name: diverse, kind: diverse, k: 2}]",
    "--set",
    "tracking.kind=mlflow",  # into <run dir>/mlruns: tests/test_tracking.py reads it
)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's one real small search through the CLI: the smoke preset, 2 rounds x 2 candidates, finalize with
    2 recipes, the baseline and a random control on 2 seeds, MLflow tracking on. Its tests only read it."""
    if "REWARD_SEARCH_TEST_SMOKE_RUN" in os.environ:  # reuse a finished one while developing (as the cache above)
        return Path(os.environ["REWARD_SEARCH_TEST_SMOKE_RUN"])
    folder = tmp_path_factory.mktemp("smoke-run") / "run"
    command = [sys.executable, "-c", "import sys; from reward_search.cli import main; sys.exit(main())", "run"]
    command += [str(REPO / "experiments" / "smoke.yaml"), *SMOKE_RUN_ARGS, "--run-dir", str(folder)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900, env=dict(os.environ))
    assert done.returncode == 0, f"smoke run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert (folder / "finalize.json").is_file()
    return folder
