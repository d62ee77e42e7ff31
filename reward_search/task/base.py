"""The Task seam: what the rest of the system needs from a benchmark (data splits, prompts, grading)."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from reward_search.errors import DataError


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
    display_name: str = ""  # how the report names the task ("GSM8K", or a JSONL task's name)
    # sha256 of a user-supplied system prompt file (data.prompt_file): part of every trial's key, so that editing
    # the file between sessions retrains instead of reusing trials; empty for packaged prompts (fixed by version).
    prompt_sha256: str = ""


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
    """A benchmark behind a small seam: callers get one from `get_task(config)` (task/registry.py) and never name
    a concrete task. A task loads its splits, poses a question as chat messages and grades a completion."""

    name: str  # the registry key, recorded in the data manifest and in every trial's identity
    display_name: str  # how the report and the proposer's prompt name the task, e.g. "GSM8K"
    description: str  # the kind of problem, for the proposer's prompt, e.g. "grade-school math word problems"

    @abstractmethod
    def load_splits(self) -> Splits:
        """The train pool, dev and test splits, checked for overlap."""

    @abstractmethod
    def system_prompt(self) -> str:
        """The instruction the policy model is given before each question."""

    def messages(self, question: str) -> list[dict[str, str]]:
        """The chat messages (system prompt and question) that pose one problem."""
        return [{"role": "system", "content": self.system_prompt()}, {"role": "user", "content": question}]

    @abstractmethod
    def grade(self, completion: Any, gold: str, mode: str = "strict") -> dict[str, Any]:
        """The extracted answer and whether it is correct."""


def packaged_prompt(name: str) -> str:
    """A system prompt template shipped in `task/prompts/`, stripped."""
    return resources.files("reward_search.task").joinpath("prompts", name).read_text(encoding="utf-8").strip()


def _read_prompt_file(path: str) -> tuple[Path, str]:
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise DataError(f"data.prompt_file: {file} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"data.prompt_file: cannot read {file} ({exc})") from None
    if not text:
        raise DataError(f"data.prompt_file: {file} is empty")
    return file, text


@dataclass(frozen=True)
class ChatPrompt:
    """A policy prompt: the system text and worked example turns (question, response) put before each question.

    A small model copies a format from an earlier assistant turn far more readily than from an instruction: with
    one example turn SmolLM2-135M answers 14 of 100 proxy sums correctly inside the `<solution>` tags, with
    none its strict accuracy stayed 0.00 even after training (benchmarks/results/proxy_tasks.json).
    """

    system: str
    examples: tuple[tuple[str, str], ...] = ()

    def messages(self, question: str) -> list[dict[str, str]]:
        turns = [{"role": "system", "content": self.system}]
        for asked, answered in self.examples:
            turns += [{"role": "user", "content": asked}, {"role": "assistant", "content": answered}]
        return [*turns, {"role": "user", "content": question}]


def chat_prompt_from_file(path: str) -> ChatPrompt:
    """`data.prompt_file`: plain text (the system prompt), or a `.json` object {"system": text, "examples":
    [{"question", "response"}, ...]}; DataError naming the file and field otherwise."""
    file, text = _read_prompt_file(path)
    if file.suffix != ".json":
        return ChatPrompt(text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{file}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    system = data.get("system") if isinstance(data, dict) else None
    if not isinstance(system, str) or not system.strip():
        raise DataError(f'{file}: field "system" must be a non-empty string')
    examples = data.get("examples", [])
    if not isinstance(examples, list):
        raise DataError(f'{file}: field "examples" must be a list of {{"question", "response"}} objects')
    turns = []
    for number, example in enumerate(examples, start=1):
        if not isinstance(example, dict) or not all(isinstance(example.get(k), str) for k in ("question", "response")):
            raise DataError(f'{file}: examples[{number}] needs string fields "question" and "response"')
        turns.append((example["question"], example["response"]))
    return ChatPrompt(system.strip(), tuple(turns))


def prompt_from_file(path: str) -> str:
    """A user's system prompt file (`data.prompt_file`), stripped; DataError when it is missing or empty."""
    return chat_prompt_from_file(path).system


def render_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """Chat messages rendered through the tokenizer's chat template, ending with the assistant turn's opening."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
