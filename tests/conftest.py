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


def pytest_configure(config: pytest.Config) -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if "REWARD_SEARCH_TEST_CACHE" in os.environ:  # reuse a cache across runs while developing
        os.environ["REWARD_SEARCH_CACHE"] = os.environ["REWARD_SEARCH_TEST_CACHE"]
    else:
        _SESSION_CACHE.append(tempfile.mkdtemp(prefix="reward-search-cache-"))
        os.environ["REWARD_SEARCH_CACHE"] = _SESSION_CACHE[0]


def pytest_unconfigure(config: pytest.Config) -> None:
    for folder in _SESSION_CACHE:
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
