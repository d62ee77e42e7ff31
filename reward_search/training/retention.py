"""Checkpoint retention: one stored copy of each checkpoint, the newest few while a trial trains, none after it.

A screening checkpoint (LoRA weights, optimizer state, trainer state) is written by TRL into the trial folder. Inside
Tune, `tune.report` copies it into Tune's storage, which is what a restarted trial resumes from, so the trial-folder
original is dropped at once (`drop_reported`). Tune keeps `run.keep_checkpoints` of them (`checkpoint_config`);
TRL keeps as many locally for a run outside Tune. When a trial ends done, its checkpoints go too unless
`run.keep_checkpoints_after_trial`: the adapter and the records are what a finished trial is
(`prune_finished_trial` in the trial folder, `DropCheckpointsWhenDone` in Tune's storage).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ray import tune

CHECKPOINT_PREFIX = "checkpoint_"  # Tune's checkpoint folders inside a trial's storage folder


def checkpoint_config(run: Any) -> tune.CheckpointConfig:
    """Tune's retention for reported checkpoints: the newest `run.keep_checkpoints`."""
    return tune.CheckpointConfig(num_to_keep=run.keep_checkpoints)


def drop_reported(checkpoint_dir: Path) -> None:
    """Remove the trial-folder original of a checkpoint Tune has just copied into its storage."""
    shutil.rmtree(checkpoint_dir, ignore_errors=True)


def prune_finished_trial(out: Path, run: Any) -> None:
    """A finished trial keeps its adapter and records; its `checkpoints/` folder goes unless configured to stay."""
    if not run.keep_checkpoints_after_trial:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under `folder` (0 when it does not exist)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


class DropCheckpointsWhenDone(tune.Callback):
    """Deletes a trial's checkpoints from Tune's storage when it ends done (a failed or stopped trial keeps them,
    since a resumed run continues it from there)."""

    def __init__(self, keep_after_trial: bool) -> None:
        self.keep_after_trial = keep_after_trial

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        if self.keep_after_trial or not result.get("final") or result.get("status") != "done":
            return
        delete_tune_checkpoints(trial.storage.storage_filesystem, trial.path)


def delete_tune_checkpoints(filesystem: Any, trial_path: str) -> int:
    """Delete the `checkpoint_*` folders under a trial's storage path; returns how many went."""
    import pyarrow.fs

    try:
        infos = filesystem.get_file_info(pyarrow.fs.FileSelector(trial_path, allow_not_found=True))
    except OSError:
        return 0
    dropped = 0
    for info in infos:
        if info.type == pyarrow.fs.FileType.Directory and info.base_name.startswith(CHECKPOINT_PREFIX):
            filesystem.delete_dir(info.path)
            dropped += 1
    return dropped
