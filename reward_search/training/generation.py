"""Rollout generation backends for GRPO (`training.generation`), mapped onto TRL's and transformers' own options.

* ``hf``: TRL's plain path, `model.generate` with a dynamic KV cache (the default, and what runs on CPU).
* ``fast``: a transformers path built for small batches, where per-token kernel launches dominate. Two variants:
  ``compile`` (a static KV cache with the decode step compiled by torch.compile, CUDA graphs replacing the launches)
  and ``cb`` (TRL's `use_transformers_continuous_batching`, paged attention with CUDA graphs). `FAST_DEFAULT` is
  the one `fast` means; `benchmarks/gpu_screening.py` measures both. On CPU the compile variant only switches to
  the static cache (transformers compiles the decode step on accelerators only), so its completions still match.
* ``vllm``: TRL's colocate mode, vLLM in the trial's own process, its memory share scaled to the trial's GPU share
  (`search.gpus_per_trial`), never the whole card. It needs the ``vllm`` extra: ``pip install 'reward-search[vllm]'``.

`GenerationTimer` measures the seconds spent inside TRL's generation only (not a callback's dev evaluation).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from reward_search.errors import UserError
from reward_search.training.settings import FAST_DEFAULT, backend_problem

FAST_VARIANT_ENV = "REWARD_SEARCH_FAST_VARIANT"
# vLLM (weights + KV cache) takes this part of the trial's GPU share; training keeps the rest.
VLLM_PART_OF_SHARE = 0.5


@dataclass(frozen=True)
class GenerationPlan:
    """How one trial generates: the GRPOConfig options, and whether TRL's compile switch is turned back on."""

    backend: str
    variant: str = ""
    grpo_options: dict[str, Any] = field(default_factory=dict)
    compile_decode: bool = False

    @property
    def name(self) -> str:
        return f"{self.backend}:{self.variant}" if self.variant else self.backend


def validate(backend: str, variant: str = FAST_DEFAULT) -> None:
    """Raise a UserError naming the missing extra or version (the CLI prints one line and exits 2)."""
    problem = backend_problem(backend, variant)
    if problem:
        raise UserError(f"training.generation: {problem}")


def plan(
    backend: str, device: str, gpu_share: float = 1.0, variant: str | None = None, max_cache_len: int | None = None
) -> GenerationPlan:
    """The GRPOConfig options for `backend` on `device`; `gpu_share` is the trial's fraction of its GPU.

    `max_cache_len` (prompt + completion budget) sizes the static cache once, so the compiled decode step keeps one
    shape for the whole run instead of recompiling for every new prompt length."""
    chosen = variant or FAST_DEFAULT
    validate(backend, chosen)
    if backend == "hf":
        return GenerationPlan("hf", grpo_options={"use_vllm": False})
    if backend == "fast":
        if chosen == "cb":
            # TRL gives the paged cache half the free memory by default; a packed trial gets its share of that.
            options = {"use_transformers_continuous_batching": True}
            if gpu_share < 1:
                options["transformers_continuous_batching_config"] = {"max_memory_percent": 0.5 * gpu_share}
            return GenerationPlan("fast", "cb", {"use_vllm": False, **options})
        options: dict[str, Any] = {"use_vllm": False, "cache_implementation": "static"}
        if max_cache_len:
            options["generation_kwargs"] = {"max_cache_len": max_cache_len}
        return GenerationPlan("fast", "compile", options, compile_decode=device == "cuda")
    if device != "cuda":
        raise UserError("training.generation: 'vllm' needs a CUDA GPU (model.device resolved to cpu)")
    return GenerationPlan("vllm", "colocate", vllm_options(gpu_share))


def vllm_options(gpu_share: float) -> dict[str, Any]:
    """TRL colocate options: vLLM takes VLLM_PART_OF_SHARE of the trial's share of the card, not 0.3 of all of it
    (TRL's default), so that packed trials do not each claim the same memory."""
    share = min(max(gpu_share, 0.0), 1.0) or 1.0
    return {
        "use_vllm": True,
        "vllm_mode": "colocate",
        "vllm_gpu_memory_utilization": round(VLLM_PART_OF_SHARE * share, 4),
    }


def plan_for(training: Any, search: Any, device: str) -> GenerationPlan:
    """The plan an experiment config asks for (`training.generation`, or the older `training.use_vllm` flag).

    $REWARD_SEARCH_FAST_VARIANT (compile or cb) picks the `fast` variant; benchmarks/gpu_screening.py uses it to
    measure both."""
    backend = getattr(training, "generation", "hf")
    if getattr(training, "use_vllm", False):
        backend = "vllm"
    share = float(getattr(search, "gpus_per_trial", 0.0) or 1.0)
    variant = os.environ.get(FAST_VARIANT_ENV) or None
    cache_len = training.max_prompt_length + training.max_completion_length
    return plan(backend, device, min(share, 1.0), variant, cache_len)


def prepare_trainer(trainer: Any, generation: GenerationPlan) -> None:
    """After the GRPOTrainer is built: TRL builds its generation config with `disable_compile=True`; the compile
    variant turns that back off so that transformers compiles the static-cache decode step (CUDA only)."""
    config = getattr(trainer, "generation_config", None)
    if generation.compile_decode and config is not None:
        config.disable_compile = False


class GenerationTimer:
    """Seconds and completion tokens inside TRL's own generation call (`_generate_single_turn`), per call.

    Wrapping the trainer's method rather than `model.generate` keeps a callback's dev evaluation out of the figure
    and works for every backend (generate, generate_batch, vLLM)."""

    def __init__(self, trainer: Any) -> None:
        self.seconds: list[float] = []
        self.tokens: list[int] = []
        original = trainer._generate_single_turn

        def timed(*args: Any, **kwargs: Any) -> Any:
            _synchronize()
            started = time.perf_counter()
            completion_ids, logprobs = original(*args, **kwargs)
            _synchronize()
            self.seconds.append(time.perf_counter() - started)
            self.tokens.append(sum(len(ids) for ids in completion_ids))
            return completion_ids, logprobs

        trainer._generate_single_turn = timed

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds)

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens)


def _synchronize() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
