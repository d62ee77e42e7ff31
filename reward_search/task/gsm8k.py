"""GSM8K: loading from the shipped sample, a local folder or the hub; the dev split; prompts; gold answers.

The dev split is carved deterministically from train (seeded) and is disjoint from the pool of GRPO training
prompts, so search decisions never look at test. Questions that also occur in test (or twice across the train pool
and dev) are dropped from the training pool and counted in the manifest.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from reward_search.config import DataConfig
from reward_search.errors import DataError
from reward_search.task.base import DataManifest, Problem, SplitInfo, Splits, Task
from reward_search.task.grading import completion_text, extract_answer, is_correct

SAMPLE_PACKAGE = "reward_search.task.data"
SAMPLE_FOLDER = "gsm8k_sample"
FULL_DEV_SIZE = 500
SAMPLE_DEV_SIZE = 50


def gold_answer(solution: str) -> str | None:
    """The gold final answer: the text after `####`, stripped (None when there is no `####`)."""
    if "####" not in solution:
        return None
    return solution.split("####")[-1].strip()


def _problem(row: Any, index: int, where: str) -> Problem:
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object with 'question' and 'answer', got {type(row).__name__}")
    question, solution = row.get("question"), row.get("answer")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: missing or empty 'question'")
    if not isinstance(solution, str):
        raise DataError(f"{where}: missing 'answer'")
    gold = gold_answer(solution)
    if not gold:
        raise DataError(f"{where}: 'answer' has no final answer after '####'")
    return Problem(index=index, question=question, answer=gold, solution=solution)


def _read_jsonl(lines: Iterable[str], name: str) -> tuple[Problem, ...]:
    problems: list[Problem] = []
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{name}:{line_number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno})") from None
        problems.append(_problem(row, len(problems), where))
    return tuple(problems)


def read_jsonl_file(path: Path) -> tuple[Problem, ...]:
    """Problems from a GSM8K-style JSONL file; DataError naming the file and line on bad rows."""
    try:
        with path.open(encoding="utf-8") as handle:
            return _read_jsonl(handle, str(path))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from None


def _read_parquet_file(path: Path) -> tuple[Problem, ...]:
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several types for a corrupt file; all mean "unreadable"
        raise DataError(f"{path}: unreadable Parquet file ({exc})") from None
    return tuple(_problem(row, i, f"{path}: row {i}") for i, row in enumerate(rows))


def load_local(folder: str | Path) -> dict[str, tuple[Problem, ...]]:
    """train and test from a folder holding `train.jsonl`/`test.jsonl` (or `.parquet`)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(f"data.path: folder {root} does not exist (it should hold train.jsonl and test.jsonl)")
    splits = {}
    for name in ("train", "test"):
        jsonl, parquet = root / f"{name}.jsonl", root / f"{name}.parquet"
        if jsonl.is_file():
            splits[name] = read_jsonl_file(jsonl)
        elif parquet.is_file():
            splits[name] = _read_parquet_file(parquet)
        else:
            raise DataError(f"data.path: {root} has no {name}.jsonl (or {name}.parquet)")
    return splits


def load_sample() -> dict[str, tuple[Problem, ...]]:
    """The GSM8K sample shipped inside the package (300 train, 100 test; MIT licence)."""
    folder = resources.files(SAMPLE_PACKAGE).joinpath(SAMPLE_FOLDER)
    splits = {}
    for name in ("train", "test"):
        text = folder.joinpath(f"{name}.jsonl").read_text(encoding="utf-8")
        splits[name] = _read_jsonl(text.splitlines(), f"{SAMPLE_FOLDER}/{name}.jsonl")
    return splits


def load_hub(hub_id: str, hub_config: str) -> dict[str, tuple[Problem, ...]]:
    """train and test through `datasets.load_dataset` (a hub id, or a local dataset repository folder)."""
    import datasets

    try:
        loaded = datasets.load_dataset(hub_id, hub_config)
    except Exception as exc:  # datasets raises many types (network, missing config, auth); all are user-facing
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"data.hub_id: could not load {hub_id!r} (config {hub_config!r}): {first_line}. Offline? Use "
            "data.source=sample, or data.source=local with data.path pointing at train.jsonl and test.jsonl"
        ) from None
    splits = {}
    for name in ("train", "test"):
        if name not in loaded:
            raise DataError(f"data.hub_id: {hub_id!r} has no {name!r} split (has: {', '.join(loaded)})")
        splits[name] = tuple(_problem(row, i, f"{hub_id}[{name}] row {i}") for i, row in enumerate(loaded[name]))
    return splits


def question_key(question: str) -> str:
    """Whitespace- and case-normalised question text, used for overlap checks."""
    return " ".join(question.split()).lower()


def fingerprint(problems: Iterable[Problem]) -> str:
    """sha256 of a split's questions in order."""
    digest = hashlib.sha256()
    for problem in problems:
        digest.update(problem.question.encode("utf-8"))
        digest.update(b"\x1e")
    return digest.hexdigest()


def check_disjoint(splits: dict[str, Iterable[Problem]]) -> None:
    """Raise DataError when any two splits share a question."""
    seen: dict[str, str] = {}
    for name, problems in splits.items():
        for problem in problems:
            key = question_key(problem.question)
            other = seen.setdefault(key, name)
            if other != name:
                raise DataError(f"splits {other!r} and {name!r} share a question: {problem.question[:80]!r}")


def default_dev_size(train_size: int, source: str) -> int:
    """500 from a full train set, 50 from the shipped sample; never more than a fifth of train."""
    wanted = SAMPLE_DEV_SIZE if source == "sample" else FULL_DEV_SIZE
    return max(1, min(wanted, train_size // 5))


def carve_dev(
    train: tuple[Problem, ...], test: tuple[Problem, ...], dev_size: int, seed: int
) -> tuple[tuple[Problem, ...], tuple[Problem, ...], int]:
    """(train pool, dev, removed): a seeded dev sample of train, with overlapping questions dropped from the pool."""
    test_keys = {question_key(p.question) for p in test}
    clean = [p for p in train if question_key(p.question) not in test_keys]
    if dev_size >= len(clean):
        raise DataError(f"data.dev_size: {dev_size} leaves no training prompts (train has {len(clean)} usable items)")
    chosen = set(random.Random(seed).sample(range(len(clean)), dev_size))
    dev = tuple(p for i, p in enumerate(clean) if i in chosen)
    dev_keys = {question_key(p.question) for p in dev}
    pool = tuple(p for i, p in enumerate(clean) if i not in chosen and question_key(p.question) not in dev_keys)
    return pool, dev, len(train) - len(pool) - len(dev)


class GSM8KTask(Task):
    """GSM8K behind the Task seam."""

    name = "gsm8k"

    def __init__(self, config: DataConfig | None = None) -> None:
        self.config = config or DataConfig()

    def _raw_splits(self) -> tuple[dict[str, tuple[Problem, ...]], str]:
        config = self.config
        if config.source == "sample":
            return load_sample(), f"package:{SAMPLE_PACKAGE}/{SAMPLE_FOLDER}"
        if config.source == "local":
            if not config.path:
                raise DataError("data.path: required when data.source is 'local' (a folder with train.jsonl)")
            return load_local(config.path), str(Path(config.path).expanduser().resolve())
        return load_hub(config.hub_id, config.hub_config), f"hub:{config.hub_id}/{config.hub_config}"

    def load_splits(self) -> Splits:
        raw, location = self._raw_splits()
        for name in ("train", "test"):
            if not raw[name]:
                raise DataError(f"{location}: the {name} split is empty")
        dev_size = self.config.dev_size or default_dev_size(len(raw["train"]), self.config.source)
        pool, dev, removed = carve_dev(raw["train"], raw["test"], dev_size, self.config.dev_seed)
        splits = {"train": pool, "dev": dev, "test": raw["test"]}
        check_disjoint(splits)
        manifest = DataManifest(
            task=self.name,
            source=self.config.source,
            location=location,
            dev_seed=self.config.dev_seed,
            dev_size=len(dev),
            removed_overlap=removed,
            splits={name: SplitInfo(size=len(p), sha256=fingerprint(p)) for name, p in splits.items()},
        )
        return Splits(train=pool, dev=dev, test=raw["test"], manifest=manifest)

    def messages(self, question: str) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": system_prompt(self.config.system_prompt)},
            {"role": "user", "content": question},
        ]

    def grade(self, completion: Any, gold: str, mode: str = "strict") -> dict[str, Any]:
        answer = extract_answer(completion_text(completion), mode)
        return {"extracted": answer, "correct": is_correct(answer, gold)}


SYSTEM_PROMPT_FILES = {"project": "prompts/system.txt", "paper": "prompts/system_paper.txt"}


def system_prompt(kind: str = "project") -> str:
    """The instruction (thinking block, then the number alone in a solution block) from its template file:
    `paper` is the reference code's text byte for byte, `project` this project's shorter wording."""
    path = SYSTEM_PROMPT_FILES[kind]
    return resources.files("reward_search.task").joinpath(path).read_text(encoding="utf-8").strip()


def render_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """Chat messages rendered through the tokenizer's chat template, ending with the assistant turn's opening."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def get_task(config: DataConfig | None = None) -> Task:
    """The configured task (GSM8K is the only one so far)."""
    config = config or DataConfig()
    return TASKS[config.task](config)


def load_splits(config: DataConfig | None = None) -> Splits:
    """The configured task's train pool, dev and test splits."""
    return get_task(config).load_splits()


TASKS: dict[str, type[GSM8KTask]] = {"gsm8k": GSM8KTask}
