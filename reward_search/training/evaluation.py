"""Batched greedy evaluation of a model (optionally with a LoRA adapter) on a split: per-question records.

Prompts are sorted by length and generated in left-padded batches, which is what makes CPU evaluation fast (the
CPU is memory-bandwidth bound, so a batch of 32 costs little more per step than one sequence). Greedy decoding
keeps results deterministic; records come back in the split's order whatever the batch order was.

A model carrying a LoRA adapter (a trainer's PEFT model) is evaluated on a copy with the adapter merged into the
weights, so generation runs at the base model's speed while the training model stays untouched. The `fast`
generation backend adds a static KV cache (compiled decode steps on a GPU) with prompts padded to a multiple of
`FAST_PAD_MULTIPLE` tokens, so a few shapes cover a whole split.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reward_search import io
from reward_search.config import EvalConfig
from reward_search.errors import UserError
from reward_search.task.base import Problem, Task, render_prompt
from reward_search.task.grading import Metrics, extract_answer, is_correct, score
from reward_search.training.gold_logprob import add_gold_logprobs, from_prompt_cache, target_ids
from reward_search.training.models import LoadedModel
from reward_search.training.prefix_cache import SharedPrefix, padded_after_prefix, shared_prefix


@dataclass
class Generation:
    """One completion and how many tokens it took (up to and including the end-of-sequence token)."""

    text: str
    tokens: int
    gold_logprob: float | None = None  # when gold targets were given and the batch's cache could be reused


@dataclass
class EvalResult:
    """Per-question records, metrics under the primary extraction mode and every recorded mode, and timings."""

    records: list[dict[str, Any]]
    metrics: Metrics
    metrics_by_mode: dict[str, Metrics]
    seconds: float
    tokens_generated: int
    info: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            **self.metrics.to_dict(),
            "by_mode": {mode: m.to_dict() for mode, m in self.metrics_by_mode.items()},
            "seconds": round(self.seconds, 3),
            "tokens_generated": self.tokens_generated,
            "tokens_per_second": round(self.tokens_generated / self.seconds, 2) if self.seconds else 0.0,
            "questions_per_second": round(len(self.records) / self.seconds, 4) if self.seconds else 0.0,
            **self.info,
        }


def attach_adapter(loaded: LoadedModel, adapter: str | Path) -> LoadedModel:
    """The model with a LoRA adapter merged in (merging makes generation as fast as the base model)."""
    from peft import PeftModel

    folder = Path(adapter).expanduser()
    if not (folder / "adapter_config.json").is_file():
        raise UserError(f"--adapter: {folder} is not a LoRA adapter folder (no adapter_config.json)")
    merged = PeftModel.from_pretrained(loaded.model, str(folder)).merge_and_unload()
    merged.eval()
    return LoadedModel(merged, loaded.tokenizer, loaded.spec, f"{loaded.source} + adapter {folder}", loaded.device)


FAST_PAD_MULTIPLE = 64  # prompt lengths are bucketed so that a static cache compiles for few shapes


@contextlib.contextmanager
def merged_for_eval(loaded: LoadedModel) -> Iterator[LoadedModel]:
    """`loaded` itself, or for a PEFT (LoRA) model a merged copy of it that is freed afterwards.

    Merging makes each generated token cost one matmul per layer instead of three; working on a copy leaves the
    trainer's model (adapter, optimizer references, base weights) bit-for-bit unchanged."""
    try:
        from peft import PeftModel
    except ImportError:  # peft is a dependency; without it no model can carry an adapter
        yield loaded
        return
    if not isinstance(loaded.model, PeftModel):
        yield loaded
        return
    merged = copy.deepcopy(loaded.model).merge_and_unload()
    merged.eval()
    try:
        yield LoadedModel(merged, loaded.tokenizer, loaded.spec, loaded.source, loaded.device)
    finally:
        del merged
        if loaded.device == "cuda":
            import torch

            torch.cuda.empty_cache()


def _count_tokens(row: Sequence[int], stop_ids: set[int]) -> int:
    for position, token in enumerate(row):
        if token in stop_ids:
            return position + 1
    return len(row)


class _StepProgress:
    """A stopping criterion that never stops: it shows the decode step of the current batch on the progress bar."""

    def __init__(self, progress: Any, label: str, max_new_tokens: int, every: int = 8) -> None:
        self.progress, self.label, self.max_new_tokens, self.every = progress, label, max_new_tokens, every
        self.step = 0

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        self.step += 1
        if self.step % self.every == 0:
            self.progress.set_postfix_str(f"{self.label} token {self.step}/{self.max_new_tokens}", refresh=True)
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def _batch_inputs(
    tokenizer: Any, prompts: Sequence[str], token_ids: Sequence[list[int]], prefix: SharedPrefix | None, fast: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One batch's model inputs (left-padded; after the shared prefix when there is one) and its extra options."""
    if prefix is None:
        encoded = tokenizer(
            list(prompts),
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
            pad_to_multiple_of=FAST_PAD_MULTIPLE if fast else None,
        )
        return dict(encoded), {}
    inputs = padded_after_prefix(prefix, [ids[len(prefix) :] for ids in token_ids], tokenizer.pad_token_id)
    return {k: inputs[k] for k in ("input_ids", "attention_mask")}, {"cache": prefix.batch_cache(len(prompts))}


def _stop_ids(tokenizer: Any, model: Any) -> set[int]:
    eos = model.generation_config.eos_token_id if model.generation_config is not None else None
    stop_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    stop_ids.add(tokenizer.eos_token_id)
    return stop_ids


def _greedy(
    model: Any, encoded: dict[str, Any], extra: dict[str, Any], max_new_tokens: int, pad_id: int, criteria: Any
) -> Any:
    """One batch's greedy generation, returned with its cache (`sequences`, `cache`)."""
    import torch

    with torch.inference_mode():
        return model.generate(
            **encoded,
            **extra,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=pad_id,
            stopping_criteria=criteria,
            return_dict_in_generate=True,
        )


def generate_batched(
    loaded: LoadedModel,
    prompts: Sequence[str],
    max_new_tokens: int,
    batch_size: int,
    progress: Any = None,
    fast: bool = False,
    share_prefix: bool = True,
    targets: Sequence[list[int]] | None = None,
    target_rows: int = 8,
) -> list[Generation]:
    """Greedy completions for `prompts`, in their order, generated in length-sorted left-padded batches.

    The prompts' common opening (chat header and system prompt) is computed once and shared (`prefix_cache`).
    `targets` (token ids per prompt, e.g. the gold solutions): each batch's cache then also gives their mean
    log-probability after the prompt (`gold_logprob.from_prompt_cache`, `target_rows` rows per forward pass).
    `fast`: a static KV cache (transformers compiles its decode step on a GPU) and prompts padded to a multiple of
    FAST_PAD_MULTIPLE tokens; the completions are the same."""
    from transformers import StoppingCriteriaList

    tokenizer, model = loaded.tokenizer, loaded.model
    tokenizer.padding_side = "left"
    stop_ids = _stop_ids(tokenizer, model)

    token_ids = [list(ids) for ids in tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(prompts)), key=lambda i: -len(token_ids[i]))  # batch by token length: little padding
    # the prompts' common opening, computed once (a static cache keeps its own fixed-shape buffers instead)
    prefix = shared_prefix(model, token_ids, loaded.device) if share_prefix and not fast else None
    results: list[Generation | None] = [None] * len(prompts)
    batches = (len(order) + batch_size - 1) // batch_size
    for number, start in enumerate(range(0, len(order), batch_size), start=1):
        criteria = None
        if progress is not None:
            step_progress = _StepProgress(progress, f"batch {number}/{batches}", max_new_tokens)
            criteria = StoppingCriteriaList([step_progress])  # type: ignore[list-item]
        chunk = order[start : start + batch_size]
        encoded, extra = _batch_inputs(
            tokenizer, [prompts[i] for i in chunk], [token_ids[i] for i in chunk], prefix, fast
        )
        encoded = {k: v.to(loaded.device) for k, v in encoded.items()}
        if fast:
            extra["cache_implementation"] = "static"
        output = _greedy(model, encoded, extra, max_new_tokens, tokenizer.pad_token_id, criteria)
        values: Sequence[float | None] = [None] * len(chunk)
        if targets is not None:
            wanted = [targets[i] for i in chunk]
            found = from_prompt_cache(model, output.get("cache"), encoded, wanted, tokenizer.pad_token_id, target_rows)
            values = found or values
        new_tokens = output.sequences[:, encoded["input_ids"].shape[1] :].tolist()
        for i, row, value in zip(chunk, new_tokens, values, strict=True):
            used = _count_tokens(row, stop_ids)
            text = tokenizer.decode(row[:used], skip_special_tokens=True)
            results[i] = Generation(text=text, tokens=used, gold_logprob=value)
        if progress is not None:
            progress.update(len(chunk))
    return [r for r in results if r is not None]


def grade_records(
    problems: Sequence[Problem], generations: Sequence[Generation], modes: Sequence[str], primary: str
) -> list[dict[str, Any]]:
    """Per-question records: the completion, the answer each mode extracts, and correctness."""
    records = []
    for problem, generation in zip(problems, generations, strict=True):
        record: dict[str, Any] = {
            "index": problem.index,
            "question": problem.question,
            "gold": problem.answer,
            "completion": generation.text,
            "completion_tokens": generation.tokens,
        }
        for mode in dict.fromkeys([primary, *modes]):
            answer = extract_answer(generation.text, mode)
            column = mode.replace("-", "_")
            record[f"extracted_{column}"] = answer
            record[f"correct_{column}"] = is_correct(answer, problem.answer)
        primary_column = primary.replace("-", "_")
        record["extracted"] = record[f"extracted_{primary_column}"]
        record["correct"] = record[f"correct_{primary_column}"]
        records.append(record)
    return records


def evaluate(
    loaded: LoadedModel,
    task: Task,
    problems: Sequence[Problem],
    config: EvalConfig,
    show_progress: bool = True,
    generation: str = "hf",
) -> EvalResult:
    """Generate greedily for every problem and grade the completions (a LoRA model on a merged copy)."""
    with merged_for_eval(loaded) as policy:
        result = _evaluate(policy, task, problems, config, show_progress, generation == "fast")
    result.info["merged_adapter"] = policy is not loaded
    result.info["generation"] = "fast" if generation == "fast" else "hf"
    return result


def _evaluate(
    loaded: LoadedModel,
    task: Task,
    problems: Sequence[Problem],
    config: EvalConfig,
    show_progress: bool,
    fast: bool,
) -> EvalResult:
    from tqdm.auto import tqdm

    if not problems:
        raise UserError("evaluation split is empty: nothing to evaluate")
    prompts = [render_prompt(loaded.tokenizer, task.messages(p.question)) for p in problems]
    started = time.perf_counter()
    targets = target_ids(loaded.tokenizer, problems)  # the graded signal's gold solutions
    rows = min(config.batch_size, 8)
    with tqdm(total=len(prompts), desc="evaluating", unit="q", disable=not show_progress, dynamic_ncols=True) as bar:
        generations = generate_batched(
            loaded, prompts, config.max_new_tokens, config.batch_size, bar, fast, targets=targets, target_rows=rows
        )
    seconds = time.perf_counter() - started
    records = grade_records(problems, generations, config.modes, config.primary_mode)
    known = [g.gold_logprob for g in generations]  # from the generation caches; else a standalone pass
    gold_logprob = add_gold_logprobs(loaded, task, problems, records, rows, known)
    by_mode = {}
    for mode in dict.fromkeys([config.primary_mode, *config.modes]):
        column = mode.replace("-", "_")
        by_mode[mode] = score(
            {"extracted": r[f"extracted_{column}"], "correct": r[f"correct_{column}"]} for r in records
        )
    return EvalResult(
        records=records,
        metrics=by_mode[config.primary_mode],
        metrics_by_mode=by_mode,
        seconds=seconds,
        tokens_generated=sum(g.tokens for g in generations),
        info={
            "model": loaded.spec,
            "model_source": loaded.source,
            "device": loaded.device,
            "batch_size": config.batch_size,
            "max_new_tokens": config.max_new_tokens,
            "gold_logprob": gold_logprob,
        },
    )


def write_result(result: EvalResult, out_dir: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """`records.parquet` and `metrics.json` in `out_dir`, each written atomically."""
    out = Path(out_dir)
    io.write_parquet(out / "records.parquet", result.records)
    io.write_json(out / "metrics.json", {**result.summary(), **(extra or {})})
    return out
