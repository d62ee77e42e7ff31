"""The screening run as a Ray Tune function trainable.

Parameters travel as plain data (the resolved config, the reward spec, an absolute trial folder), so a trial can be
restarted on any node. Each candidate travels as its validation record (`RewardCandidate.to_dict`: source, verdict
and probe report, whose re-probe set the trial's spot re-probes score) and runs in that node's sandbox.
"""

from __future__ import annotations

from typing import Any

from reward_search.config import ExperimentConfig, from_dict
from reward_search.training.placement import train_workers
from reward_search.training.reporting import TuneReporter
from reward_search.training.spec import RewardSpec


def trial_params(
    config: ExperimentConfig, spec: RewardSpec, trial_dir: str | None = None, **labels: Any
) -> dict[str, Any]:
    """The param_space entry for one screening trial (trial_dir None: the run's trials/<key> folder)."""
    return {"config": config.to_dict(), "spec": spec.to_dict(), "trial_dir": trial_dir, **labels}


def screening_trainable(params: dict[str, Any]) -> None:
    """Run one screening trial inside Tune: intermediate reports with checkpoints, then a final report."""
    import warnings

    from reward_search.ops.jobs import apply_job_secrets
    from reward_search.training.screening import run_screening

    warnings.filterwarnings("ignore", category=FutureWarning)
    apply_job_secrets()  # HF_TOKEN of a submitted job, for gated models (never in its runtime_env)
    config = from_dict(ExperimentConfig, params["config"])
    if train_workers(config.search) > 1:  # one Ray Train worker per GPU (DDP), this process coordinates
        from reward_search.training.distributed import run_distributed

        run_distributed(params, TuneReporter())
        return
    spec = RewardSpec.from_dict(params["spec"])
    try:
        run_screening(config, spec, params["trial_dir"], reporter=TuneReporter(), progress=False)
    finally:
        release_memory()


def release_memory() -> None:
    """Free the finished trial's model and optimizer before Tune hands this process (reused) the next trial."""
    import gc

    gc.collect()
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
