"""Split helpers every task shares: overlap keys, fingerprints, the seeded dev carve and the data manifest.

The dev split is carved deterministically from train (seeded) and is disjoint from the pool of GRPO training
prompts, so search decisions never look at test. Questions that also occur in test (or twice across the train pool
and dev) are dropped from the training pool and counted in the manifest.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterable
from typing import Any

from reward_search.errors import DataError
from reward_search.task.base import DataManifest, Problem, SplitInfo, Splits, Task

FULL_DEV_SIZE = 500
SAMPLE_DEV_SIZE = 50


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


def make_splits(
    task: Task,
    source: str,
    location: str,
    parts: dict[str, tuple[Problem, ...]],
    dev_seed: int,
    removed: int,
    prompt_sha256: str = "",
) -> Splits:
    """Splits (train pool, dev, test) checked for overlap, with the manifest that fingerprints them."""
    check_disjoint(parts)
    manifest = DataManifest(
        task=task.name,
        display_name=task.display_name,
        prompt_sha256=prompt_sha256,
        source=source,
        location=location,
        dev_seed=dev_seed,
        dev_size=len(parts["dev"]),
        removed_overlap=removed,
        splits={name: SplitInfo(size=len(p), sha256=fingerprint(p)) for name, p in parts.items()},
    )
    return Splits(train=parts["train"], dev=parts["dev"], test=parts["test"], manifest=manifest)


def read_json_rows(lines: Iterable[str], name: str, parse: Callable[[Any, int, str], Problem]) -> tuple[Problem, ...]:
    """One problem per non-blank JSON line; `parse(row, index, where)` checks a row, and errors say `name:line`."""
    problems: list[Problem] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None
        problems.append(parse(row, len(problems), where))
    return tuple(problems)
