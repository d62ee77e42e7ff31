"""A run directory copied or moved elsewhere (the cluster workflow pulls one back) reports, shows and resumes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reward_search import io
from reward_search.cli import main
from reward_search.config import dump_config, load_config
from reward_search.errors import UserError
from reward_search.search.driver import _open_run, prepare_run_dir, resolve_run_dir
from reward_search.search.leaderboard import LeaderboardCore

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "experiments" / "smoke.yaml"


def _finished_run(folder: Path) -> str:
    """A run directory as a finished one-candidate search leaves it: its config anchored at `folder`, a manifest with
    a run id, the leaderboard with one done candidate and its trial's records. Returns the run id."""
    config, folder = resolve_run_dir(load_config(SMOKE), str(folder))
    folder.mkdir(parents=True)
    io.write_text(folder / "config.yaml", dump_config(config))
    run_id = "smoke-20261207t000000-abcdef"
    io.write_json(folder / "manifest.json", {"run_id": run_id, "seed": 3407, "data": {"task": "gsm8k"}})
    io.write_json(folder / "driver_state.json", {"proposed_rounds": [1], "sessions": 1})
    board = LeaderboardCore(str(folder))
    source = "def flat(prompts, completions, **kwargs):\n    return [0.5 for _ in completions]\n"
    board.add_candidate(
        {"name": "flat", "source": source, "origin": {"proposer": "test", "round": 1}}, 1, "accepted", []
    )
    (entry,) = board.all()
    trial = folder / "trials" / "k1"
    board.update(entry.candidate_id, status="done", accuracy=0.25, correct=1, n=4, trial_key="k1", trial_dir=str(trial))
    io.write_parquet(trial / "curves.parquet", [{"step": s, "reward": 0.1 * s} for s in (1, 2)])
    io.write_parquet(trial / "selection.parquet", [{"index": q, "correct": q == 0} for q in range(4)])
    return run_id


@pytest.mark.slow
def test_a_moved_run_directory_reports_shows_and_resumes(tmp_path, capsys):
    original = tmp_path / "cluster" / "runs" / "smoke"
    run_id = _finished_run(original)
    moved = tmp_path / "laptop" / "pulled"
    shutil.copytree(original, moved)
    shutil.rmtree(tmp_path / "cluster")  # moved, not copied: nothing may point back
    assert str(original.parent) in (moved / "config.yaml").read_text()  # the stored config names the old place

    assert main(["status", str(moved)]) == 0
    out = capsys.readouterr().out
    assert "1 candidates" in out and "flat" in out
    assert main(["report", str(moved), "--resamples", "100"]) == 0
    assert (moved / "report" / "report.md").is_file()
    assert "flat" in (moved / "report" / "report.md").read_text()

    # resume's own first step (before Ray): the moved folder is the same run, re-anchored where it now is
    config, folder, resumed_id = _open_run(load_config(moved / "config.yaml"), moved, None, True, None)
    assert folder == moved.resolve() and resumed_id == run_id
    assert config.run.storage_path == str(moved.parent.resolve()) and config.run.name == "pulled"
    assert json.loads((moved / "manifest.json").read_text())["run_id"] == run_id


def test_a_different_config_on_a_run_directory_is_refused_naming_what_differs(tmp_path):
    run = tmp_path / "run"
    _finished_run(run)
    changed, folder = resolve_run_dir(load_config(SMOKE, ["training.steps=3"]), str(run))
    with pytest.raises(UserError) as refused:
        prepare_run_dir(changed, folder)  # what `run --run-dir RUN --set training.steps=3` does before Ray
    message = str(refused.value)
    assert "already holds a run whose config differs in training.steps" in message
    assert f"reward-search resume {folder}" in message and "(its own config)" in message
