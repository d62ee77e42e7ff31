"""Which task a config names: the one place that knows the concrete tasks.

`get_task(config)` takes the data config or the whole experiment config. `data.source: jsonl` is the user's own
task (`task/jsonl.py`); every other source holds the benchmark `data.task` names (GSM8K so far). To add a task,
subclass `Task` in a module of this package, add it to `TASKS` and say in `task_name` which configs select it.
"""

from __future__ import annotations

from typing import Any

from reward_search.config import DataConfig
from reward_search.task.base import Splits, Task
from reward_search.task.gsm8k import GSM8KTask
from reward_search.task.jsonl import JsonlTask

TASKS: dict[str, type[Task]] = {GSM8KTask.name: GSM8KTask, JsonlTask.name: JsonlTask}


def _data_config(config: Any) -> DataConfig:
    if config is None:
        return DataConfig()
    return config if isinstance(config, DataConfig) else config.data


def task_name(config: Any = None) -> str:
    """The registry key of the configured task."""
    data = _data_config(config)
    return JsonlTask.name if data.source == "jsonl" else data.task


def get_task(config: Any = None) -> Task:
    """The configured task; `config` is a DataConfig, an ExperimentConfig or None (the offline GSM8K sample)."""
    data = _data_config(config)
    return TASKS[task_name(data)](data)  # type: ignore[call-arg]  (every task takes its DataConfig)


def load_splits(config: Any = None) -> Splits:
    """The configured task's train pool, dev and test splits."""
    return get_task(config).load_splits()


def tokenizer_corpus() -> list[str]:
    """The texts the embedded tiny tokenizer is trained on: the default prompt and the shipped GSM8K sample (a
    fixed corpus, whatever the run's task, so the tokenizer and its cache stay the same)."""
    from reward_search.task.gsm8k import load_sample, system_prompt

    texts = [system_prompt()]
    for problems in load_sample().values():
        texts.extend(p.question + "\n" + p.solution for p in problems)
    return texts
