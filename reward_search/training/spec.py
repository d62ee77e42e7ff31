"""What one screening run trains with (a reward spec), and the key that identifies a trial.

The trial key hashes everything that can change the result: reward sources, names and weights, whether the base
rewards are on and their weights, the whole training config, the seed, the model and the data fingerprints. Two
runs with the same key are the same experiment; any difference trains afresh and never reuses an old adapter. A
candidate's verdict and probe report travel in the spec (`to_dict`) but are not in the key (`describe`): they do not
change what is trained, and a finished trial is reused whatever its candidate's record carries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from reward_search.candidates.candidate import RewardCandidate
from reward_search.config import ExperimentConfig, to_plain
from reward_search.task.base import DataManifest

KEY_LENGTH = 16


@dataclass(frozen=True)
class RewardSpec:
    """Base rewards (on unless switched off for a control) plus candidate rewards with their weights."""

    candidates: tuple[RewardCandidate, ...] = ()
    weights: tuple[float, ...] = ()
    base_rewards: bool = True
    label: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.weights and len(self.weights) != len(self.candidates):
            raise ValueError(f"{len(self.weights)} weights for {len(self.candidates)} candidate rewards")
        names = [c.name for c in self.candidates]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"candidate reward names must be distinct (TRL logs by name): {', '.join(duplicates)}")

    @property
    def candidate_weights(self) -> tuple[float, ...]:
        return self.weights or tuple(1.0 for _ in self.candidates)

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        names = [c.name for c in self.candidates] or ["base-only" if self.base_rewards else "no-rewards"]
        return "+".join(names)

    def describe(self) -> dict[str, Any]:
        """The reward part of the trial identity, as plain data."""
        return {
            "base_rewards": self.base_rewards,
            "candidates": [
                {"id": c.id, "name": c.name, "source": c.source, "weight": w}
                for c, w in zip(self.candidates, self.candidate_weights, strict=True)
            ],
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "base_rewards": self.base_rewards,
            "weights": list(self.candidate_weights),
            "candidates": [c.to_dict() for c in self.candidates],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RewardSpec:
        candidates = tuple(RewardCandidate.from_dict(c) for c in data.get("candidates", ()))
        return cls(
            candidates=candidates,
            weights=tuple(float(w) for w in data.get("weights", ())),
            base_rewards=bool(data.get("base_rewards", True)),
            label=str(data.get("label", "")),
        )


def key_payload(config: ExperimentConfig, spec: RewardSpec, manifest: DataManifest) -> dict[str, Any]:
    """Everything that identifies a trial, as plain data (also stored beside the trial for inspection)."""
    return {
        "rewards": spec.describe(),
        "training": to_plain(config.training),
        "seed": config.run.seed,
        "model": {"spec": config.model.spec, "dtype": config.model.dtype}
        | ({"quantization": config.model.quantization} if config.model.quantization != "none" else {}),
        "data": {
            "task": manifest.task,
            "dev_seed": manifest.dev_seed,
            "splits": {name: info.sha256 for name, info in manifest.splits.items()},
        }
        | ({"prompt": manifest.prompt_sha256} if manifest.prompt_sha256 else {}),
    }


def trial_key(config: ExperimentConfig, spec: RewardSpec, manifest: DataManifest) -> str:
    """sha256 over the canonical JSON of `key_payload`, first 16 hex characters."""
    text = json.dumps(key_payload(config, spec, manifest), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:KEY_LENGTH]


def parse_weights(text: str | None, count: int) -> tuple[float, ...]:
    """`--weights 1,0.5` as floats, one per candidate reward (empty: all 1.0)."""
    if not text:
        return ()
    try:
        weights = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--weights {text!r}: expected comma-separated numbers, e.g. 1,0.5") from None
    if len(weights) != count:
        raise ValueError(f"--weights has {len(weights)} values for {count} reward files")
    return weights


def reward_names(spec: RewardSpec, base_names: Sequence[str]) -> list[str]:
    """The reward function names TRL will log, in order: base rewards first, then candidates."""
    names = list(base_names) if spec.base_rewards else []
    names.extend(c.name for c in spec.candidates)
    clash = sorted(set(names[: len(names) - len(spec.candidates)]) & {c.name for c in spec.candidates})
    if clash:
        raise ValueError(f"candidate reward names clash with base rewards: {', '.join(clash)}")
    return names
