"""Your own task from JSONL files (`data.source: jsonl`): one object per line with a `question` and a numeric
`answer`, and optionally a worked `solution`.

`data.train_file` is required. `data.test_file` and `data.dev_file` are optional: a missing test split is carved
from train first (seeded with `data.dev_seed + 1`), then a missing dev split is carved from what is left exactly as
for GSM8K (`task/splits.py`). The policy's system prompt is `prompts/system_jsonl.txt` unless `data.prompt_file`
names another. Answers are graded like GSM8K's: the number in the <solution> block, compared numerically.

Every bad row is one `DataError` naming the file, the line and the field, which the CLI prints as one line (exit 2).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from reward_search.config import DataConfig
from reward_search.errors import DataError
from reward_search.task.base import ChatPrompt, Problem, Splits, Task, chat_prompt_from_file, packaged_prompt
from reward_search.task.grading import completion_text, extract_answer, is_correct
from reward_search.task.splits import carve_dev, default_dev_size, make_splits, question_key, read_json_rows

PROMPT_FILE = "system_jsonl.txt"
ROW_FORMAT = 'one JSON object per line with "question" and a numeric "answer"'
MIN_TRAIN = 3  # a training pool, a dev item and a test item


def numeric_answer(value: Any, where: str) -> str:
    """The gold answer as text: a JSON number, or a string holding one (commas allowed: "9,492")."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise DataError(f'{where}: field "answer" must be a number, got {json.dumps(value)}')
    text = value.strip() if isinstance(value, str) else repr(value)
    try:
        number = float(text.replace(",", ""))
    except ValueError:
        raise DataError(f'{where}: field "answer" must be a number, got {json.dumps(value)}') from None
    if not math.isfinite(number):
        raise DataError(f'{where}: field "answer" must be a finite number, got {json.dumps(value)}')
    return text


def parse_row(row: Any, index: int, where: str) -> Problem:
    """One Problem from one decoded line; DataError naming `where` (file:line) and the field on a bad row."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected {ROW_FORMAT}, got a JSON {type(row).__name__}")
    for field in ("question", "answer"):
        if field not in row:
            raise DataError(f'{where}: field "{field}" is missing ({ROW_FORMAT})')
    question = row["question"]
    if not isinstance(question, str) or not question.strip():
        raise DataError(f'{where}: field "question" must be a non-empty string')
    solution = row.get("solution", "")
    if not isinstance(solution, str):
        raise DataError(f'{where}: field "solution" must be a string when present')
    return Problem(index=index, question=question, answer=numeric_answer(row["answer"], where), solution=solution)


def read_problems(path: str, key: str) -> tuple[Problem, ...]:
    """Every problem in one JSONL file; `key` is the config field that named it (for a missing file)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"data.{key}: {file} does not exist")
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{file}: not UTF-8 text ({exc.reason})") from None
    problems = read_json_rows(lines, str(file), parse_row)
    if not problems:
        raise DataError(f"{file}:1: the file is empty; expected {ROW_FORMAT}")
    return problems


class JsonlTask(Task):
    """A user's own question/numeric-answer task behind the Task seam."""

    name = "jsonl"
    description = "problems whose answer is a number"

    def __init__(self, config: DataConfig) -> None:
        if not config.train_file:
            raise DataError("data.train_file: required when data.source is 'jsonl'")
        self.config = config
        self._chat: ChatPrompt | None = None

    @property
    def display_name(self) -> str:  # type: ignore[override]  (a class attribute on other tasks)
        return self.config.name or Path(self.config.train_file or "jsonl").stem

    def load_splits(self) -> Splits:
        config = self.config
        assert config.train_file is not None  # checked in __init__
        train = read_problems(config.train_file, "train_file")
        given_dev = read_problems(config.dev_file, "dev_file") if config.dev_file else None
        test = read_problems(config.test_file, "test_file") if config.test_file else None
        removed = 0
        if test is None:
            if len(train) < MIN_TRAIN:
                raise DataError(
                    f"{config.train_file}: {len(train)} item(s); with no data.test_file at least {MIN_TRAIN} are "
                    "needed (test and dev are carved from train)"
                )
            size = default_dev_size(len(train), config.source)
            train, test, removed = carve_dev(train, given_dev or (), size, config.dev_seed + 1)
        if given_dev is None:
            dev_size = config.dev_size or default_dev_size(len(train), config.source)
            pool, dev, dropped = carve_dev(train, test, dev_size, config.dev_seed)
        else:
            taken = {question_key(p.question) for p in (*test, *given_dev)}
            pool, dev = tuple(p for p in train if question_key(p.question) not in taken), given_dev
            dropped = len(train) - len(pool)
        if not pool:
            raise DataError(f"{config.train_file}: no training items left once the dev and test questions are removed")
        location = str(Path(config.train_file).expanduser().resolve())
        parts = {"train": pool, "dev": dev, "test": test}
        chat = self.chat_prompt()
        text = json.dumps([chat.system, chat.examples]) if chat.examples else chat.system  # old keys stay valid
        prompt = hashlib.sha256(text.encode("utf-8")).hexdigest() if config.prompt_file else ""
        return make_splits(self, config.source, location, parts, config.dev_seed, removed + dropped, prompt)

    def chat_prompt(self) -> ChatPrompt:
        """`data.prompt_file` (a system text, or JSON with example turns too) or the packaged system prompt; read
        once per task object (messages() runs for every problem)."""
        if self._chat is None:
            file = self.config.prompt_file
            self._chat = chat_prompt_from_file(file) if file else ChatPrompt(packaged_prompt(PROMPT_FILE))
        return self._chat

    def system_prompt(self) -> str:
        return self.chat_prompt().system

    def messages(self, question: str) -> list[dict[str, str]]:
        return self.chat_prompt().messages(question)

    def grade(self, completion: Any, gold: str, mode: str = "strict") -> dict[str, Any]:
        answer = extract_answer(completion_text(completion), mode)
        return {"extracted": answer, "correct": is_correct(answer, gold)}
