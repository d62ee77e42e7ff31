"""Where a trial runs: the device, the GPUs Ray granted it, its share of a GPU, and how many training workers.

The rule (DESIGN, "GPU placement"): a trial uses exactly the GPUs Ray granted. Zero GPUs means CPU; a fraction means
one GPU shared, so the trial caps its CUDA memory to its share; two or more means one Ray Train worker per GPU (DDP),
never `nn.DataParallel`. The checks a config states on its own are in `settings.py` (pure, run by `config.py` at
load time); `preflight` here adds the checks that depend on this machine (bitsandbytes, CUDA, GPU count) and runs
before Ray starts.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from typing import Any

from reward_search.errors import ConfigError, ModelError
from reward_search.training.settings import train_workers

# Keep this much of a fractional share free of the caching allocator's own overhead and CUDA's context.
_SHARE_HEADROOM = 0.98
# A multi-worker trial's own process only coordinates (Ray Train holds the workers' CPUs and GPUs).
COORDINATOR_CPUS = 0.05


@dataclass(frozen=True)
class Placement:
    """The resources one trial (or one training worker of it) runs on."""

    device: str  # "cpu" or "cuda"
    gpus: float  # GPUs Ray granted this process (0 outside Ray or for CPU trials)
    gpu_ids: tuple[str, ...]  # the ids Ray put in CUDA_VISIBLE_DEVICES
    memory_fraction: float | None  # the CUDA memory cap for a fractional share, else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "gpus": self.gpus,
            "gpu_ids": list(self.gpu_ids),
            "memory_fraction": self.memory_fraction,
        }


# --------------------------------------------------------------------------------------------- machine checks


def bitsandbytes_available() -> bool:
    return importlib.util.find_spec("bitsandbytes") is not None


def local_gpu_count() -> int:
    """CUDA devices this machine shows torch (0 with a CPU build of torch)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def preflight_problems(config: Any, local: bool, gpu_count: int | None = None, bnb: bool | None = None) -> list[str]:
    """Problems of this config on this machine: bitsandbytes for 8-bit/4-bit, and (for a local Ray) the GPUs here.

    `local`: Ray will start on this machine (no cluster address), so this machine's GPUs are every node's GPUs.
    """
    bnb = bitsandbytes_available() if bnb is None else bnb
    problems = []
    if config.training.optimizer == "adamw_8bit" and not bnb:
        problems.append(
            "training.optimizer: adamw_8bit needs bitsandbytes: pip install 'reward-search[gpu]' (or use adamw_torch)"
        )
    if config.model.quantization == "4bit" and not bnb:
        problems.append(
            "model.quantization: 4bit needs bitsandbytes: pip install 'reward-search[gpu]' (or set model.quantization "
            "none)"
        )
    if not local:
        return problems
    gpus = local_gpu_count() if gpu_count is None else gpu_count
    wanted = config.search.gpus_per_trial
    if wanted > gpus:
        problems.append(
            f"search.gpus_per_trial: {wanted} GPUs per trial, but this machine (the local Ray's only node) has {gpus}"
        )
    if config.model.device == "auto" and gpus > 0 and wanted == 0:
        problems.append(
            "model.device: 'auto' resolves to cuda here but search.gpus_per_trial is 0 (every trial would see every "
            "GPU); set search.gpus_per_trial, or model.device cpu"
        )
    return problems


def preflight(config: Any, address: str | None = None) -> None:
    """Raise ConfigError (exit 2) for the first problem `preflight_problems` finds; call it before Ray starts."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    ray = sys.modules.get("ray")
    joined = ray is not None and ray.is_initialized()  # a Ray this process already started: the driver uses it
    problems = preflight_problems(config, local=address is None and not joined)
    if problems:
        raise ConfigError(problems[0])


# --------------------------------------------------------------------------------------------- inside a trial


def granted_gpus() -> tuple[float, tuple[str, ...]] | None:
    """(GPUs, their ids) Ray granted this process, or None outside a Ray worker."""
    try:
        import ray
    except ImportError:
        return None
    if not ray.is_initialized():
        return None
    context = ray.get_runtime_context()
    if context.worker.mode != ray.WORKER_MODE:
        return None
    amount = float(context.get_assigned_resources().get("GPU", 0.0))
    ids = tuple(str(i) for i in context.get_accelerator_ids().get("GPU", []))
    return amount, ids


def resolve_placement(requested: str, granted: tuple[float, tuple[str, ...]] | None, cuda_available: bool) -> Placement:
    """The device and memory cap for a process: granted GPUs decide inside Ray, `model.device` outside it."""
    if granted is None:  # a plain run (`reward-search screen`): the requested device, all of it
        if requested == "cuda" and not cuda_available:
            raise ModelError("model.device: 'cuda' requested but torch sees no GPU (CPU torch build, or no device)")
        device = "cuda" if requested == "cuda" or (requested == "auto" and cuda_available) else "cpu"
        return Placement(device, 0.0, (), None)
    amount, ids = granted
    if amount == 0 or requested == "cpu":
        return Placement("cpu", amount, ids, None)
    if not cuda_available:
        raise ModelError(
            f"Ray granted GPU(s) {', '.join(ids) or '?'} but torch sees no CUDA device here (CPU torch build or a "
            "broken node)"
        )
    fraction = round(amount * _SHARE_HEADROOM, 4) if amount < 1 else None
    return Placement("cuda", amount, ids, fraction)


def trial_placement(requested: str) -> Placement:
    """This process's placement, with the CUDA memory cap applied for a fractional GPU share."""
    import torch

    placement = resolve_placement(requested, granted_gpus(), torch.cuda.is_available())
    apply_memory_cap(placement)
    return placement


def apply_memory_cap(placement: Placement) -> None:
    """Cap this process's CUDA caching allocator at its share of the (one visible) GPU; a no-op for whole GPUs."""
    if placement.device == "cuda" and placement.memory_fraction is not None:
        import torch

        torch.cuda.set_per_process_memory_fraction(placement.memory_fraction, device=0)


def share_bytes(placement: Placement) -> int | None:
    """The CUDA memory this process may use (its share of GPU 0), for sizing a generation cache; None on CPU."""
    if placement.device != "cuda":
        return None
    import torch

    total = torch.cuda.get_device_properties(0).total_memory
    return int(total * (placement.memory_fraction or 1.0))


def gpu_hours(seconds: float, gpus: float) -> float:
    """GPU-hours of a trial: its whole wall time (load, train, evaluate) times the GPUs it held."""
    return seconds * gpus / 3600.0


def tune_resources(search: Any) -> dict[str, float]:
    """The Tune trial's own resources: the whole request for one process; only the coordinator's CPU otherwise
    (Ray Train asks for the workers' GPUs in its own placement group)."""
    if train_workers(search) > 1:
        return {"cpu": COORDINATOR_CPUS, "gpu": 0.0}
    return {"cpu": search.cpus_per_trial, "gpu": search.gpus_per_trial}


def slot_resources(search: Any) -> dict[str, float]:
    """What one trial holds in all, for counting how many fit on the cluster at once."""
    workers = train_workers(search)
    gpus = search.gpus_per_trial if search.gpus_per_trial < 2 else float(workers)
    return {"cpu": search.cpus_per_trial, "gpu": gpus}


def process_rank() -> int:
    """This process's rank among a trial's training workers (Ray Train sets RANK); 0 for a single process."""
    return int(os.environ.get("RANK", "0") or 0)


def world_size() -> int:
    """How many training workers this trial runs (Ray Train sets WORLD_SIZE); 1 for a single process."""
    return max(1, int(os.environ.get("WORLD_SIZE", "1") or 1))
