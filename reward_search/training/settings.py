"""The training side's config-time checks: pure functions of a config and the installed packages.

They live apart from `placement.py` and `generation.py` so that `config.py` (the base layer) can run them at load
time without importing the training package's heavier modules; `placement` and `generation` use them too.
"""

from __future__ import annotations

import importlib.util
from importlib import metadata
from typing import Any

BACKENDS = ("hf", "fast", "vllm")
FAST_VARIANTS = ("compile", "cb")
FAST_DEFAULT = "compile"
VLLM_VERSIONS = ("0.22.0", "0.32.0")  # TRL 1.16 supports 0.22 to 0.31
MIN_TRANSFORMERS_FAST = "5.8.0"  # continuous batching in TRL needs it
MIN_TORCH_COMPILE = "2.6.0"


def train_workers(search: Any) -> int:
    """Training processes per trial: one per GPU for gpus_per_trial >= 2, else `search.train_workers` (default 1)."""
    if search.gpus_per_trial >= 2:
        return int(search.gpus_per_trial)
    return int(search.train_workers or 1)


def config_problems(config: Any) -> list[tuple[str, str]]:
    """(key, message) for impossible placements a config states on its own; each message names every key."""
    model, search, training = config.model, config.search, config.training
    gpus = search.gpus_per_trial
    problems = []
    if model.device == "cuda" and gpus == 0:
        problems.append(
            ("model.device", "'cuda' with search.gpus_per_trial 0: Ray would grant no GPU; set search.gpus_per_trial")
        )
    on_cpu = model.device == "cpu" or gpus == 0
    if training.optimizer == "adamw_8bit" and on_cpu:
        problems.append(
            (
                "training.optimizer",
                "adamw_8bit runs on a GPU (bitsandbytes): with model.device cpu or search.gpus_per_trial 0 use "
                "adamw_torch",
            )
        )
    if model.quantization == "4bit" and on_cpu:
        problems.append(
            (
                "model.quantization",
                "4bit (bitsandbytes QLoRA) runs on a GPU: with model.device cpu or search.gpus_per_trial 0 use none",
            )
        )
    if gpus > 1 and gpus != int(gpus):
        problems.append(("search.gpus_per_trial", f"{gpus} GPUs: above 1, give a whole number (one worker per GPU)"))
    if gpus >= 2 and search.train_workers not in (None, int(gpus)):
        problems.append(
            ("search.train_workers", f"{search.train_workers} with search.gpus_per_trial {gpus}: one worker per GPU")
        )
    workers = train_workers(search) if not problems else 1
    batch = training.prompts_per_step * training.generations_per_prompt
    if workers > 1 and batch % workers:
        problems.append(
            (
                "training.prompts_per_step",
                f"{training.prompts_per_step} x training.generations_per_prompt {training.generations_per_prompt} "
                f"completions do not split over {workers} workers (search.gpus_per_trial/train_workers)",
            )
        )
    return problems


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _older(found: str, needed: str) -> bool:
    from packaging.version import Version

    return Version(Version(found).base_version) < Version(needed)


def backend_problem(backend: str, variant: str = FAST_DEFAULT) -> str | None:
    """Why `backend` cannot run in this environment (the extra or version it needs), or None when it can."""
    if backend not in BACKENDS:
        return f"{backend!r} is not one of {', '.join(BACKENDS)}"
    if backend == "vllm":
        found = _version("vllm") if importlib.util.find_spec("vllm") is not None else None
        if found is None:
            return "'vllm' needs the vllm extra, which is not installed: pip install 'reward-search[vllm]'"
        low, high = VLLM_VERSIONS
        if _older(found, low) or not _older(found, high):
            return f"'vllm' needs vllm >= {low} and < {high} (TRL's supported range); found {found}"
    if backend == "fast":
        if variant not in FAST_VARIANTS:
            return f"fast variant {variant!r} is not one of {', '.join(FAST_VARIANTS)}"
        transformers_version = _version("transformers") or "0"
        if _older(transformers_version, MIN_TRANSFORMERS_FAST):
            return f"'fast' needs transformers >= {MIN_TRANSFORMERS_FAST}; found {transformers_version}"
        torch_version = _version("torch") or "0"
        if variant == "compile" and _older(torch_version, MIN_TORCH_COMPILE):
            return f"'fast' needs torch >= {MIN_TORCH_COMPILE} for torch.compile; found {torch_version}"
    return None
