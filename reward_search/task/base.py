"""The Task seam: what the rest of the system needs from a benchmark (data splits, prompts, grading)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One benchmark item: its index in the source split, the question and the gold final answer."""

    index: int
    question: str
    answer: str
    solution: str = ""


@dataclass(frozen=True)
class SplitInfo:
    """Size and sha256 fingerprint of one split's questions (in order)."""

    size: int
    sha256: str


@dataclass(frozen=True)
class DataManifest:
    """What a run trained, searched and tested on: sources, seeds, sizes and fingerprints."""

    task: str
    source: str
    location: str
    dev_seed: int
    dev_size: int
    removed_overlap: int
    splits: dict[str, SplitInfo]


@dataclass(frozen=True)
class Splits:
    """The three disjoint splits: the GRPO training pool, the dev split for search decisions, and test."""

    train: tuple[Problem, ...]
    dev: tuple[Problem, ...]
    test: tuple[Problem, ...]
    manifest: DataManifest

    def get(self, name: str) -> tuple[Problem, ...]:
        if name not in ("train", "dev", "test"):
            raise ValueError(f"unknown split {name!r}; choose train, dev or test")
        return getattr(self, name)


class Task(ABC):
    """A benchmark behind a small seam, so tasks other than GSM8K can be added without touching callers."""

    name: str

    @abstractmethod
    def load_splits(self) -> Splits:
        """The train pool, dev and test splits, checked for overlap."""

    @abstractmethod
    def messages(self, question: str) -> list[dict[str, str]]:
        """The chat messages (system prompt and question) that pose one problem."""

    @abstractmethod
    def grade(self, completion: Any, gold: str, mode: str = "strict") -> dict[str, Any]:
        """The extracted answer and whether it is correct."""
