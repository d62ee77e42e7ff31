"""Every user error through the real CLI: one line naming the file, field or flag, exit 2, no traceback."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from reward_search.cli import main
from reward_search.config import dump_config, load_config

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "experiments" / "smoke.yaml"


def _fails(capsys: pytest.CaptureFixture, argv: list[str], *named: str) -> str:
    """Run the CLI; assert exit 2 and a single error line that names each of `named`; return that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("reward-search: error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    for text in named:
        assert text in errors[0], errors[0]
    return errors[0]


def test_non_utf8_experiment_file(tmp_path, capsys):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("run:\n  name: caf\xe9\n".encode("latin-1"))
    line = _fails(capsys, ["validate", str(bad)], str(bad), "not UTF-8", "0xe9")
    assert "line 2:" in line and "offset 16" in line


def test_empty_experiment_file_is_an_error(tmp_path, capsys):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing here\n")
    _fails(capsys, ["validate", str(empty)], str(empty), "empty")


def test_directory_given_as_the_experiment_file(tmp_path, capsys):
    _fails(capsys, ["validate", str(tmp_path)], str(tmp_path), "is a directory")
    _fails(capsys, ["screen", str(SMOKE), "--reward", str(tmp_path)], f"--reward {tmp_path}", "is a directory")


def test_set_error_names_the_override_not_the_file(capsys):
    line = _fails(capsys, ["validate", str(SMOKE), "--set", "eval.limit=0"], "--set eval.limit=0", "at least 1")
    assert "smoke.yaml" not in line
    # a bad value in the file itself is still the file's
    _fails(capsys, ["validate", str(SMOKE), "--set", "eval.limit=3", "--set", "eval.nope=1"], "--set eval.nope=1")


def test_limit_error_names_the_flag(capsys):
    line = _fails(capsys, ["evaluate", str(SMOKE), "--limit", "0"], "--limit 0", "eval.limit")
    assert "smoke.yaml" not in line and "--set" not in line


def test_resume_set_error_names_the_override(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(dump_config(load_config(SMOKE)))
    line = _fails(capsys, ["resume", str(run), "--set", "search.rounds=0"], "--set search.rounds=0", "at least 1")
    assert "config.yaml" not in line
    assert not (run / "run_id").exists() and not (run / "tune").exists()  # refused before anything started


def test_run_dir_that_is_a_file_or_cannot_be_created(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    _fails(capsys, ["run", str(SMOKE), "--run-dir", str(blocker)], f"--run-dir {blocker}", "is a file")
    below = blocker / "run"
    _fails(capsys, ["run", str(SMOKE), "--run-dir", str(below)], f"--run-dir {below}", f"{blocker} is a file")
    storage = ["--set", f"run.storage_path={blocker}"]
    _fails(capsys, ["run", str(SMOKE), *storage], "run.storage_path/run.name", "cannot be created")


def test_evaluate_with_an_adapter_of_another_architecture(tmp_path, capsys):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    other = LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=1024,
    )  # fmt: skip
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    adapter = tmp_path / "adapter"
    get_peft_model(LlamaForCausalLM(other), lora).save_pretrained(str(adapter))
    argv = ["evaluate", str(SMOKE), "--adapter", str(adapter), "--limit", "1", "--no-progress"]
    _fails(capsys, argv, f"--adapter {adapter}", "another architecture", "'random:tiny'", "size mismatch")


def test_estimate_refuses_a_negative_price(capsys):
    argv = ["estimate", str(SMOKE), "--gpus", "1", "--usd-per-gpu-hour", "-2.5"]
    _fails(capsys, argv, "--usd-per-gpu-hour -2.5", "zero or more")


def test_estimate_into_a_closed_pipe_ends_quietly():
    """`reward-search estimate ... | head -0`: the reader has gone before the first write."""
    command = [sys.executable, "-m", "reward_search.cli", "estimate", str(SMOKE), "--gpus", "1"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the command writes (its imports take far longer than this)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141, err.decode()
    assert err.decode() == ""  # no BrokenPipeError traceback, no "Exception ignored" at exit


def test_report_without_finalize_names_no_none_recipe_and_no_negative_zero(tmp_path):
    from reward_search.analysis.document import fmt, fmt_ci, fmt_signed

    assert fmt(-0.00001, 4) == "0.0000" and fmt_signed(-0.00001) == "+0.0000" and fmt_signed(-0.25) == "-0.2500"
    assert fmt_ci(-0.00004, 0.00003, 4) == "[0.0000, 0.0000]" and fmt(-1.5) == "-1.500"
    from reward_search.analysis.rundata import load_run
    from reward_search.analysis.signal_section import summary_lines
    from reward_search.search.leaderboard import LeaderboardCore

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(dump_config(load_config(SMOKE)))
    board = LeaderboardCore(str(run))
    source = "def flat(prompts, completions, **kwargs):\n    return [0.0 for _ in completions]\n"
    board.add_candidate(
        {"name": "flat", "source": source, "origin": {"proposer": "test", "round": 1}}, 1, "accepted", []
    )
    (entry,) = board.all()
    board.update(entry.candidate_id, status="done", accuracy=0.0, correct=0, n=4, gold_logprob=-0.00001)
    lines = summary_lines(load_run(run), 200, 0)
    assert any(line.startswith("best recipe (finalize has not run)") for line in lines), lines
    assert not any("None" in line or "-0.0000" in line for line in lines), lines


def test_candidate_records_have_the_mode_of_every_other_record(tmp_path):
    from reward_search import io
    from reward_search.candidates.candidate import CandidateStore, RewardCandidate

    source = "def r(prompts, completions, **kwargs):\n    return [0.0 for _ in completions]\n"
    candidate = RewardCandidate.from_source(source)
    store = CandidateStore(tmp_path / "candidates")
    assert store.save(candidate)
    other = io.write_json(tmp_path / "other.json", {})
    mode = stat.S_IMODE(store.path(candidate.id).stat().st_mode)
    assert mode == stat.S_IMODE(other.stat().st_mode) == 0o644
