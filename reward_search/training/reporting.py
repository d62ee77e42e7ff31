"""Where a screening run reports progress: nowhere (a plain run) or Ray Tune (a trial), behind one small seam."""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any


class Reporter(ABC):
    """Receives intermediate metrics with the checkpoint they belong to, and supplies a checkpoint to resume."""

    @abstractmethod
    def report(self, metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
        """Called every `report_every` steps (after the checkpoint is written) and once at the end."""

    def restore(self, checkpoints_dir: Path) -> Path | None:
        """A checkpoint to resume from, placed under `checkpoints_dir`; None to use what is already there."""
        return None


class LocalReporter(Reporter):
    """A run outside Tune: keeps the reports in memory (the curves and result files are the record)."""

    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []

    def report(self, metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
        self.reports.append({**metrics, "checkpoint": str(checkpoint_dir) if checkpoint_dir else None})


class TuneReporter(Reporter):
    """Inside a Ray Tune trial: `tune.report` with a checkpoint, so schedulers can stop weak trials early and a
    trial restarted elsewhere resumes from its last checkpoint."""

    def report(self, metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
        from ray import tune

        checkpoint = tune.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
        tune.report(metrics, checkpoint=checkpoint)
        if checkpoint_dir is not None:  # Tune's storage now holds the one stored copy
            from reward_search.training.retention import drop_reported

            drop_reported(checkpoint_dir)

    def restore(self, checkpoints_dir: Path) -> Path | None:
        from ray import tune

        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            return None
        with checkpoint.as_directory() as folder:
            source = Path(folder)
            step = _step_of(source)
            target = checkpoints_dir / f"checkpoint-{step}"
            if not target.exists():
                tmp = checkpoints_dir / f".restore-{step}"
                shutil.rmtree(tmp, ignore_errors=True)
                shutil.copytree(source, tmp)
                tmp.rename(target)
        return target


def _step_of(folder: Path) -> int:
    import json

    state = json.loads((folder / "trainer_state.json").read_text())
    return int(state["global_step"])
