"""GSM8K: loading from the shipped sample, a local folder or the hub; prompts; gold answers.

The dev split is carved from train as `task/splits.py` describes. Callers outside `task/` reach this module
through `get_task(config)` only; tests that test GSM8K itself import it directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from reward_search.config import DataConfig
from reward_search.errors import DataError
from reward_search.task.base import Problem, Splits, Task, packaged_prompt, prompt_from_file
from reward_search.task.grading import completion_text, extract_answer, is_correct
from reward_search.task.splits import carve_dev, default_dev_size, make_splits, read_json_rows

SAMPLE_PACKAGE = "reward_search.task.data"
SAMPLE_FOLDER = "gsm8k_sample"


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
    return read_json_rows(lines, name, _problem)


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


class GSM8KTask(Task):
    """GSM8K behind the Task seam."""

    name = "gsm8k"
    display_name = "GSM8K"
    description = "grade-school math word problems"

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
        parts = {"train": pool, "dev": dev, "test": raw["test"]}
        return make_splits(self, self.config.source, location, parts, self.config.dev_seed, removed)

    def system_prompt(self) -> str:
        if self.config.prompt_file:
            return prompt_from_file(self.config.prompt_file)
        return system_prompt(self.config.system_prompt)

    def grade(self, completion: Any, gold: str, mode: str = "strict") -> dict[str, Any]:
        answer = extract_answer(completion_text(completion), mode)
        return {"extracted": answer, "correct": is_correct(answer, gold)}


SYSTEM_PROMPT_FILES = {"project": "system.txt", "paper": "system_paper.txt"}


def system_prompt(kind: str = "project") -> str:
    """The instruction (thinking block, then the number alone in a solution block) from its template file:
    `paper` is the reference code's text byte for byte, `project` this project's shorter wording."""
    return packaged_prompt(SYSTEM_PROMPT_FILES[kind])


def load_splits(config: DataConfig | None = None) -> Splits:
    """GSM8K's train pool, dev and test splits (callers outside `task/` use `get_task(config).load_splits()`)."""
    return GSM8KTask(config).load_splits()
