"""A screening trial's identity on disk: its folder, `trial.json` marker, cached result and checkpoints.

A trial folder is named by the trial key (`training/spec.trial_key`: everything that makes a run train differently).
`trial.json` records the key and what it hashes, so a folder is never reused for another trial; `result.json`
holds the `TrialResult`, so a finished trial with the same key is returned without training; the newest complete
checkpoint under `checkpoints/` is where an interrupted trial resumes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from reward_search import io
from reward_search.config import ExperimentConfig, to_plain
from reward_search.errors import UserError
from reward_search.training.spec import RewardSpec, key_payload

# done: trained and evaluated; crashed: the candidate's fault; failed: infrastructure or divergence (retried);
# stopped: ended early by a Tune scheduler (resumable).
Status = Literal["done", "crashed", "failed", "stopped"]
CHECKPOINT_FILES = ("trainer_state.json", "adapter_model.safetensors", "adapter_config.json")


@dataclass
class TrialResult:
    """The outcome of one screening run; `metrics` are on the selection split (dev unless configured otherwise)."""

    key: str
    status: Status
    reward_spec: str
    reward_names: list[str]
    selection_split: str
    metrics: dict[str, Any] = field(default_factory=dict)
    test_metrics: dict[str, Any] | None = None
    curve_summary: dict[str, Any] = field(default_factory=dict)
    steps: int = 0
    resumed_from_step: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    tokens_generated: int = 0
    device: str = ""
    error: str | None = None
    candidate_failures: dict[str, float] = field(default_factory=dict)
    out_dir: str = ""
    cached: bool = False
    # The whole trial (load, train, evaluate) and the GPUs Ray granted it: GPU-hours = wall_seconds x gpus / 3600.
    wall_seconds: float = 0.0
    gpus: float = 0.0
    gpu_hours: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialResult:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def trial_folder(config: ExperimentConfig, key: str, out_dir: str | Path | None = None) -> Path:
    """The trial's folder: `out_dir` when given, else `<storage_path>/<run name>/trials/<key>`, made absolute."""
    out = Path(out_dir) if out_dir else Path(config.run.storage_path) / config.run.name / "trials" / key
    return out.expanduser().resolve()


def cached_result(out: Path, key: str) -> TrialResult | None:
    """A cached result for `key`, or None; refuses a folder that belongs to a different trial."""
    marker = out / "trial.json"
    if marker.is_file():
        existing = json.loads(marker.read_text()).get("key")
        if existing != key:
            raise UserError(
                f"{out} holds a different trial (key {existing}, this run is {key}): any change trains afresh, so "
                "choose another output folder (the default one is derived from the key)"
            )
    result_file = out / "result.json"
    if result_file.is_file():
        result = TrialResult.from_dict(json.loads(result_file.read_text()))
        if result.key == key and result.status == "done":
            result.cached = True
            return result
    return None


def write_marker(out: Path, key: str, config: ExperimentConfig, spec: RewardSpec, manifest: Any) -> None:
    """`trial.json`: the key, what it hashes, the spec, the config and the data manifest."""
    io.write_json(
        out / "trial.json",
        {
            "key": key,
            "identity": key_payload(config, spec, manifest),
            "spec": spec.to_dict(),
            "config": config.to_dict(),
            "data": to_plain(manifest),
        },
    )


def latest_checkpoint(checkpoints: Path) -> Path | None:
    """The newest checkpoint folder that was written completely (a kill can leave the newest one half-written)."""
    if not checkpoints.is_dir():
        return None
    found = []
    for folder in checkpoints.glob("checkpoint-*"):
        suffix = folder.name.removeprefix("checkpoint-")
        if suffix.isdigit() and all((folder / name).is_file() for name in CHECKPOINT_FILES):
            found.append((int(suffix), folder))
    return max(found)[1] if found else None


def checkpoint_step(checkpoint: Path) -> int:
    """The training step a checkpoint folder (`checkpoint-<step>`) was saved at."""
    return int(checkpoint.name.removeprefix("checkpoint-"))


def final_report(result: TrialResult) -> dict[str, Any]:
    """The last Tune report: everything the leaderboard needs, so the driver needs no shared filesystem."""
    m = result.metrics or {}
    t = result.test_metrics or {}
    return {
        "step": result.steps,
        "final": True,
        "status": result.status,
        "error": result.error or "",
        "trial_key": result.key,
        "trial_dir": result.out_dir,
        "selection_split": result.selection_split,
        "selection_accuracy": m.get("accuracy"),
        "dev_accuracy": m.get("accuracy") if result.selection_split == "dev" else None,
        "selection_f1": m.get("f1"),
        "selection_extraction_rate": m.get("extraction_rate"),
        "selection_correct": m.get("correct"),
        "selection_n": m.get("n"),
        "selection_gold_logprob": m.get("gold_logprob"),
        "test_accuracy": t.get("accuracy"),
        "test_f1": t.get("f1"),
        "test_correct": t.get("correct"),
        "test_n": t.get("n"),
        "test_gold_logprob": t.get("gold_logprob"),
        "train_seconds": result.train_seconds,
        "wall_seconds": result.wall_seconds,
        "gpu_hours": result.gpu_hours,
        "device": result.device,
        "cached": result.cached,
        "curve_summary_json": json.dumps(result.curve_summary, default=str),
        "candidate_failures_json": json.dumps(result.candidate_failures),
    }
