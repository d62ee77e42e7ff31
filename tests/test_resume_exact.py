"""Exact resume: a screening trial SIGKILLed right after its final checkpoint resumes straight to evaluation.

The kill lands at a chosen moment: the child process runs the real `reward-search screen` with the checkpoint
callback wrapped so that the process SIGKILLs itself once the last step's checkpoint is on disk (and before the
adapter, the evaluation and `result.json`). The resume is the same real CLI command, compared with an unkilled run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "experiments" / "smoke.yaml"
REWARD = REPO / "examples" / "rewards" / "numeric_closeness.py"

KILL_AT_LAST_CHECKPOINT = """
import os, signal, sys
from reward_search.training import callbacks

original = callbacks.IntermediateReport.on_save

def on_save(self, args, state, control, **kwargs):
    original(self, args, state, control, **kwargs)
    if state.global_step >= args.max_steps:
        os.kill(os.getpid(), signal.SIGKILL)

callbacks.IntermediateReport.on_save = on_save
from reward_search.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _screen(out: Path) -> list[str]:
    return ["screen", str(SMOKE), "--reward", str(REWARD), "--out", str(out), "--no-progress", "--json"]


def _untimed(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if not k.endswith("seconds") and not k.endswith("per_second")}


@pytest.mark.slow
def test_trial_killed_after_its_last_checkpoint_resumes_to_the_unkilled_result(tmp_path):
    cli = [sys.executable, "-m", "reward_search.cli"]
    reference = subprocess.run([*cli, *_screen(tmp_path / "ref")], capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr[-2000:]
    expected = json.loads(reference.stdout)
    assert expected["steps"] == 2 and expected["resumed_from_step"] == 0

    out = tmp_path / "killed"
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AT_LAST_CHECKPOINT, *_screen(out)], capture_output=True, text=True, timeout=600
    )
    assert killed.returncode == -9, killed.stderr[-2000:]  # SIGKILLed, after the step-2 checkpoint
    assert (out / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file()
    assert not (out / "result.json").exists() and not (out / "adapter").exists()

    resumed = subprocess.run([*cli, *_screen(out)], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    result = json.loads(resumed.stdout)
    assert result["status"] == "done"
    assert result["steps"] == 2 and result["resumed_from_step"] == 2  # not "steps: 3": no step past the last
    assert json.loads((out / "result.json").read_text())["steps"] == 2
    assert _untimed(result["metrics"]) == _untimed(expected["metrics"])  # gold log-prob to the last digit
    assert _untimed(result["curve_summary"]) == _untimed(expected["curve_summary"])
    assert pq.read_table(out / "selection.parquet").equals(pq.read_table(tmp_path / "ref" / "selection.parquet"))
    assert [r["step"] for r in pq.read_table(out / "curves.parquet").to_pylist()] == [1, 2]
