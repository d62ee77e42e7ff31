"""The benchmark task behind the Task seam. Callers outside this package use only these names:

    task = get_task(config)            # config: the data config or the whole experiment config
    splits = task.load_splits()
    prompt = render_prompt(tokenizer, task.messages(question))

Concrete tasks (GSM8K, JSONL) are chosen in `registry.py`.
"""

from reward_search.task.base import Problem, Splits, Task, render_prompt
from reward_search.task.registry import TASKS, get_task, load_splits, task_name, tokenizer_corpus

__all__ = [
    "TASKS",
    "Problem",
    "Splits",
    "Task",
    "get_task",
    "load_splits",
    "render_prompt",
    "task_name",
    "tokenizer_corpus",
]
