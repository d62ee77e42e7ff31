"""The proxy tasks shipped with the package (scripts/make_proxy_tasks.py, experiments/proxy-*.yaml) and the chat
prompt file with worked example turns they use (`data.prompt_file: ....json`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reward_search.cli import main
from reward_search.config import DataConfig, load_config
from reward_search.errors import DataError
from reward_search.task import get_task
from reward_search.task.splits import question_key

REPO = Path(__file__).resolve().parent.parent
PROXY = REPO / "reward_search" / "task" / "data" / "proxy"
FAMILIES = ("sums", "story", "differences")


def test_the_generator_writes_the_shipped_files_byte_for_byte(tmp_path):
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_proxy_tasks.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for family in FAMILIES:
        for name in ("train.jsonl", "dev.jsonl", "test.jsonl", "prompt.json"):
            assert (tmp_path / family / name).read_bytes() == (PROXY / family / name).read_bytes(), (family, name)


@pytest.mark.parametrize("family", FAMILIES)
def test_each_preset_loads_disjoint_splits_and_poses_the_example_turn(family):
    config = load_config(REPO / "experiments" / f"proxy-{family}.yaml")
    task = get_task(config)
    splits = task.load_splits()
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (1000, 200, 200)
    parts = [{question_key(p.question) for p in part} for part in (splits.train, splits.dev, splits.test)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    messages = task.messages(splits.dev[0].question)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    example = messages[2]["content"]
    assert task.grade(example, "0")["extracted"] is not None  # the example turn is in the graded format
    assert all(question_key(messages[1]["content"]) not in part for part in parts)
    assert splits.manifest.prompt_sha256  # the prompt file, example turns included, keys every trial


def test_the_example_turns_are_part_of_the_trial_key(tmp_path):
    train = PROXY / "sums" / "train.jsonl"
    prompt = tmp_path / "prompt.json"

    def sha(examples) -> str:
        prompt.write_text(json.dumps({"system": "Answer.", "examples": examples}), encoding="utf-8")
        config = DataConfig(source="jsonl", train_file=str(train), prompt_file=str(prompt))
        return get_task(config).load_splits().manifest.prompt_sha256

    one = sha([{"question": "What is 1 + 1?", "response": "<solution>2</solution>"}])
    assert one == sha([{"question": "What is 1 + 1?", "response": "<solution>2</solution>"}])
    assert one != sha([{"question": "What is 1 + 2?", "response": "<solution>3</solution>"}])
    assert one != sha([])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"system": "x", ', r"prompt\.json:1: not valid JSON"),
        ('{"examples": []}', r'prompt\.json: field "system" must be a non-empty string'),
        ('{"system": "x", "examples": {}}', r'prompt\.json: field "examples" must be a list'),
        ('{"system": "x", "examples": [{"question": "q"}]}', r"prompt\.json: examples\[1\] needs string fields"),
    ],
)
def test_a_bad_chat_prompt_file_is_one_line_naming_the_file(tmp_path, capsys, content, message):
    prompt = tmp_path / "prompt.json"
    prompt.write_text(content, encoding="utf-8")
    config = DataConfig(source="jsonl", train_file=str(PROXY / "sums" / "train.jsonl"), prompt_file=str(prompt))
    with pytest.raises(DataError, match=message):
        get_task(config).messages("What is 1 + 1?")
    code = main(
        [
            "evaluate",
            str(REPO / "experiments" / "proxy-sums.yaml"),
            "--set",
            f"data.prompt_file={prompt}",
            "--model",
            "random:tiny",
            "--limit",
            "1",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0]


def test_relative_task_files_are_made_absolute_for_the_trials(tmp_path, monkeypatch):
    """Tune trials run in their own working directories: a preset's relative data paths (the proxy presets' and
    the demo's) reach them absolute, anchored where the command ran."""
    from reward_search.search.driver import resolve_run_dir

    monkeypatch.chdir(REPO)
    config, folder = resolve_run_dir(load_config(REPO / "experiments" / "demo.yaml"), str(tmp_path / "run"))
    assert folder == (tmp_path / "run").resolve()
    for key in ("train_file", "dev_file", "test_file", "prompt_file"):
        value = Path(getattr(config.data, key))
        assert value.is_absolute() and value.is_file(), key
    monkeypatch.chdir(tmp_path)
    assert get_task(config).load_splits().manifest.prompt_sha256  # still loads from another working directory


def test_the_demo_searches_a_proxy_task_ranked_on_accuracy_with_its_controls():
    """`make demo`: the proxy sums task, ranked on strict accuracy, finalized against the baseline and the
    untrained model on test (the README's account of the demo)."""
    config = load_config(REPO / "experiments" / "demo.yaml")
    assert config.data.source == "jsonl" and Path(config.data.train_file).parts[-2] == "sums"
    assert config.selection.metric == "accuracy" and config.eval.primary_mode == "strict"
    assert config.finalize.baseline and config.finalize.untrained
    assert config.training.selection_size == 100 and config.training.test_size == 200
    gsm8k = load_config(REPO / "experiments" / "demo-gsm8k.yaml")
    assert gsm8k.data.source == "sample" and gsm8k.selection.metric == "gold_logprob"
