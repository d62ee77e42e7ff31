"""Shared fixtures: one model cache per test run (the embedded model is converted once), offline hub."""

from __future__ import annotations

import os
import shutil
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


# The longest tests (measured on 2 cores), started first so that no worker is left with one at the end.
LONGEST_FIRST = (
    "test_a_shortened_demo_leaderboard_is_not_all_tied",
    "test_report_files_images_and_links_resolve",
    "test_two_gloo_workers_train_resume_after_a_kill_and_leave_one_worker_artefacts",
    "test_finalize_after_a_small_search_and_resume",
    "test_killed_driver_resumes_without_retraining",
    "test_smoke_search_with_every_fidelity_switch_reports_its_fidelity_table",
    "test_smoke_run_measures_every_stage",
)


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
