"""A graded, paired selection signal: the policy's mean per-token log-probability of the gold worked solution.

Accuracy of a small model after a few GRPO steps is mostly zero, so it cannot rank candidates. The gold solution,
written in the policy's answer format (`<thinking>` working `</thinking>` `<solution>` answer `</solution>`), is
teacher-forced after the question's prompt; the mean log-probability of its tokens is continuous, moves after a
few steps, is computed per question (so paired bootstrap intervals apply), and uses no candidate's own reward.
One forward pass per question, questions batched (left-padded, explicit position ids so padding changes nothing),
the prompt's shared opening computed once (`prefix_cache`). Inside an evaluation the pass starts from the key/value
cache each generation batch leaves (`from_prompt_cache`), so no prompt is computed twice.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

from reward_search.task.base import Problem, Task, render_prompt
from reward_search.task.grading import SOLUTION_END, SOLUTION_START, THINK_END, THINK_START
from reward_search.training.prefix_cache import SharedPrefix, padded_after_prefix, shared_prefix

COLUMN = "gold_logprob"
_CALCULATOR = re.compile(r"<<[^>]*>>")


def gold_text(problem: Problem) -> str:
    """The gold worked solution in the answer format the policy is trained to write (calculator notes removed)."""
    work = problem.solution.rpartition("####")[0] if "####" in problem.solution else problem.solution
    lines = [line.strip() for line in _CALCULATOR.sub("", work).splitlines() if line.strip()]
    reasoning = "\n".join(lines) or "The answer follows."
    return f"{THINK_START}\n{reasoning}\n{THINK_END}\n{SOLUTION_START}{problem.answer}{SOLUTION_END}"


def target_ids(tokenizer: Any, problems: Sequence[Problem]) -> list[list[int]]:
    """The token ids of each problem's gold text, tokenized on its own (the pass puts them after the prompt's)."""
    return [list(tokenizer(gold_text(p), add_special_tokens=False)["input_ids"]) for p in problems]


def from_prompt_cache(
    model: Any,
    cache: Any,
    prompts: Any,
    targets: Sequence[list[int]],
    pad_id: int,
    rows_per_pass: int = 8,
) -> list[float] | None:
    """The gold log-probabilities of one generation batch, from the key/value cache its generation left behind.

    `prompts` holds the batch's `input_ids` and `attention_mask` (left-padded prompts, width W); the cache covers
    at least W - 1 of them. It is cut back to W - 1, and each row's last prompt token and its gold tokens (right-
    padded) are run on it, `rows_per_pass` rows at a time: the prompts are not computed a second time. None when the
    cache cannot be cut back (a static cache), so the caller runs the standalone pass."""
    import torch
    from transformers.cache_utils import DynamicCache

    width = prompts["input_ids"].shape[1]
    if not isinstance(cache, DynamicCache) or cache.get_seq_length() < width - 1:
        return None
    with torch.inference_mode():  # the cache's tensors are inference tensors: cut and copy them in that mode too
        cache.crop(-(cache.get_seq_length() - (width - 1)))
        return _targets_after_cache(model, cache, prompts, targets, pad_id, rows_per_pass)


def _targets_after_cache(
    model: Any, cache: Any, prompts: Any, targets: Sequence[list[int]], pad_id: int, rows_per_pass: int
) -> list[float]:
    import torch

    input_ids, mask = prompts["input_ids"], prompts["attention_mask"]
    width = input_ids.shape[1]
    order = sorted(range(len(targets)), key=lambda r: -len(targets[r]))  # passes of like length: little padding
    values: list[float] = [0.0] * len(targets)
    for start in range(0, len(order), rows_per_pass):
        rows = order[start : start + rows_per_pass]
        part = copy.deepcopy(cache)
        part.batch_select_indices(torch.tensor(rows, device=input_ids.device))
        longest = max(len(targets[r]) for r in rows)
        feed = torch.full((len(rows), 1 + longest), pad_id, dtype=torch.long)
        target_mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for k, r in enumerate(rows):
            feed[k, 0] = input_ids[r, width - 1]
            feed[k, 1 : 1 + len(targets[r])] = torch.tensor(targets[r], dtype=torch.long)
            target_mask[k, : len(targets[r])] = 1
        full_mask = torch.cat([mask[rows].cpu(), target_mask], dim=1)
        positions = (full_mask.cumsum(-1) - 1).clamp(min=0)[:, width - 1 :]
        device = input_ids.device
        logits = model(
            input_ids=feed.to(device),
            attention_mask=full_mask.to(device),
            position_ids=positions.to(device),
            cache=part,
        ).logits.float()
        picked = _token_logprobs(logits, feed[:, 1:].to(device))
        for k, r in enumerate(rows):
            values[r] = float(picked[k, : len(targets[r])].mean())
    return values


def _token_logprobs(logits: Any, targets: Any) -> Any:
    """log p(targets[:, j]) from logits[:, j] (logits one column wider: the last predicts past the targets)."""
    import torch

    return torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def _encode(tokenizer: Any, prompt: str, target: list[int]) -> tuple[list[int], int]:
    return list(tokenizer(prompt, add_special_tokens=False)["input_ids"]) + target, len(target)


def _batch_logprobs(
    model: Any,
    batch: Sequence[tuple[list[int], int]],
    pad_id: int,
    device: str,
    prefix: SharedPrefix | None = None,
) -> list[float]:
    """Mean log-probability of each sequence's last `n_target` tokens, for one left-padded batch; with `prefix`,
    the shared leading tokens come from its cache and only the rest of each row is computed."""
    import torch

    keep = max(n for _, n in batch)
    start = len(prefix) if prefix is not None else 0
    inputs = padded_after_prefix(prefix or SharedPrefix([], None), [ids[start:] for ids, _ in batch], pad_id)
    input_ids = inputs["input_ids"]
    extra = {"cache": prefix.batch_cache(len(batch))} if prefix is not None else {}
    with torch.inference_mode():
        logits = model(
            input_ids=input_ids[:, start:].to(device),
            attention_mask=inputs["attention_mask"].to(device),
            position_ids=inputs["position_ids"][:, start:].to(device),
            logits_to_keep=keep + 1,
            **extra,
        ).logits.float()
    width = input_ids.shape[1]
    # logits[:, j] predicts the token after position (width - keep - 1 + j); the targets are the last `keep` tokens
    picked = _token_logprobs(logits, input_ids[:, width - keep :].to(logits.device))
    return [float(picked[row, keep - n :].mean()) for row, (_, n) in enumerate(batch)]


def gold_logprobs(
    loaded: Any, task: Task, problems: Sequence[Problem], batch_size: int = 8, share_prefix: bool = True
) -> list[float]:
    """One value per problem, in order: the mean per-token log-probability of `gold_text(problem)`."""
    tokenizer, model = loaded.tokenizer, loaded.model
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = [
        _encode(tokenizer, render_prompt(tokenizer, task.messages(p.question)), target)
        for p, target in zip(problems, target_ids(tokenizer, problems), strict=True)
    ]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]))
    values: list[float] = [0.0] * len(encoded)
    was_training = bool(getattr(model, "training", False))
    model.eval()
    try:
        # the prompts' common opening only: a prefix reaching into a gold solution would hide targets
        prompts = [ids[: len(ids) - n] for ids, n in encoded]
        prefix = shared_prefix(model, prompts, loaded.device) if share_prefix else None
        for start in range(0, len(order), max(1, batch_size)):
            chunk = order[start : start + batch_size]
            scores = _batch_logprobs(model, [encoded[i] for i in chunk], pad_id, loaded.device, prefix)
            for i, value in zip(chunk, scores, strict=True):
                values[i] = value
    finally:
        if was_training:
            model.train()
    return values


def add_gold_logprobs(
    loaded: Any,
    task: Task,
    problems: Sequence[Problem],
    records: list[dict[str, Any]],
    batch_size: int = 8,
    known: Sequence[float | None] | None = None,
) -> float:
    """Writes each record's `gold_logprob` (records in the problems' order) and returns their mean. `known` values
    (from the generation batches' caches) are used when every one is there; otherwise the standalone pass runs."""
    if known is not None and all(v is not None for v in known):
        values = [float(v) for v in known if v is not None]
    else:
        values = gold_logprobs(loaded, task, problems, batch_size)
    for record, value in zip(records, values, strict=True):
        record[COLUMN] = value
    return sum(values) / len(values) if values else float("nan")
