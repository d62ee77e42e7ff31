"""GSM8K loading from the three sources, the dev split, manifests and bad-input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reward_search.config import DataConfig
from reward_search.errors import DataError
from reward_search.task import render_prompt
from reward_search.task.base import Problem
from reward_search.task.gsm8k import GSM8KTask, gold_answer, load_local, load_splits, system_prompt
from reward_search.task.splits import carve_dev, check_disjoint, question_key


def keys(problems):
    return {question_key(p.question) for p in problems}


def test_sample_is_the_offline_default():
    splits = load_splits()
    assert (len(splits.train) + len(splits.dev), len(splits.test)) == (300, 100)
    assert len(splits.dev) == 50
    assert splits.manifest.source == "sample"
    assert all(p.answer and "####" not in p.answer for p in splits.test)
    assert not keys(splits.train) & keys(splits.dev)
    assert not keys(splits.dev) & keys(splits.test)
    assert not keys(splits.train) & keys(splits.test)


def test_gold_answer_is_text_after_hashes():
    assert gold_answer("work\n#### 1,000 ") == "1,000"
    assert gold_answer("no marker") is None


def test_full_set_from_a_local_folder(gsm8k_full):
    splits = load_splits(DataConfig(source="local", path=str(gsm8k_full)))
    raw = load_local(gsm8k_full)
    if len(raw["train"]) == 7473:  # the real full set from shared/
        assert len(splits.dev) == 500
        assert len(splits.train) == 7473 - 500
        assert len(splits.test) == 1319
        assert sum("," in p.answer for p in splits.test) == 14
        assert sum(p.answer.startswith("-") for p in splits.test) == 2
    assert splits.manifest.splits["test"].size == len(raw["test"])
    check_disjoint({"train": splits.train, "dev": splits.dev, "test": splits.test})


def test_dev_split_is_deterministic_and_seeded():
    a = load_splits(DataConfig(dev_seed=7))
    b = load_splits(DataConfig(dev_seed=7))
    c = load_splits(DataConfig(dev_seed=8))
    assert a.dev == b.dev and a.train == b.train
    assert a.manifest == b.manifest
    assert a.dev != c.dev
    assert a.manifest.splits["dev"].sha256 != c.manifest.splits["dev"].sha256
    assert a.manifest.splits["test"].sha256 == c.manifest.splits["test"].sha256
    assert a.manifest.dev_seed == 7


def test_dev_size_is_configurable():
    splits = load_splits(DataConfig(dev_size=10))
    assert len(splits.dev) == 10 and len(splits.train) == 290
    with pytest.raises(DataError, match="data.dev_size: 300 leaves no training prompts"):
        load_splits(DataConfig(dev_size=300))


def test_overlapping_questions_are_dropped_from_the_pool():
    train = tuple(Problem(i, f"question {i}", str(i)) for i in range(20))
    test = (Problem(0, "QUESTION  3", "3"), Problem(1, "other", "1"))
    pool, dev, removed = carve_dev(train, test, dev_size=5, seed=0)
    assert removed == 1
    assert "question 3" not in keys(pool) | keys(dev)
    assert len(pool) + len(dev) == 19
    with pytest.raises(DataError, match="share a question"):
        check_disjoint({"train": train, "test": test})


def test_hub_path_through_a_locally_saved_dataset(tmp_path):
    """The hub loader's code path (datasets.load_dataset(id, 'main')) on a repository laid out like openai/gsm8k."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sample = GSM8KTask(DataConfig()).load_splits()
    (tmp_path / "main").mkdir()
    for name, problems in (("train", sample.train[:60]), ("test", sample.test[:15])):
        rows = [{"question": p.question, "answer": p.solution} for p in problems]
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / "main" / f"{name}-00000-of-00001.parquet")
    (tmp_path / "README.md").write_text(
        "---\nconfigs:\n- config_name: main\n  data_files:\n"
        "  - split: train\n    path: main/train-*\n  - split: test\n    path: main/test-*\n---\n"
    )
    splits = load_splits(DataConfig(source="hub", hub_id=str(tmp_path), hub_config="main", dev_size=10))
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (50, 10, 15)
    assert splits.test[0].answer == sample.test[0].answer
    assert splits.manifest.location.startswith("hub:")


def test_hub_failure_is_a_one_line_user_error(tmp_path):
    with pytest.raises(DataError, match="data.hub_id: could not load"):
        load_splits(DataConfig(source="hub", hub_id=str(tmp_path / "nothing-here")))


def test_missing_folder_and_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_splits(DataConfig(source="local", path=str(tmp_path / "nope")))
    with pytest.raises(DataError, match="has no train.jsonl"):
        load_splits(DataConfig(source="local", path=str(tmp_path)))
    with pytest.raises(DataError, match="data.path: required"):
        load_splits(DataConfig(source="local"))


def _write_split(folder: Path, name: str, lines: list[str]) -> None:
    (folder / f"{name}.jsonl").write_text("\n".join(lines) + "\n")


def test_malformed_line_names_file_and_line(tmp_path):
    good = json.dumps({"question": "q?", "answer": "x\n#### 1"})
    _write_split(tmp_path, "train", [good, good.replace("q?", "r?"), "{not json"])
    _write_split(tmp_path, "test", [json.dumps({"question": "t?", "answer": "#### 2"})])
    with pytest.raises(DataError, match=r"train\.jsonl:3: invalid JSON"):
        load_local(tmp_path)
    _write_split(tmp_path, "train", [good, json.dumps({"question": "z", "answer": "no marker"})])
    with pytest.raises(DataError, match=r"train\.jsonl:2: 'answer' has no final answer after '####'"):
        load_local(tmp_path)
    _write_split(tmp_path, "train", [json.dumps({"answer": "#### 3"})])
    with pytest.raises(DataError, match=r"train\.jsonl:1: missing or empty 'question'"):
        load_local(tmp_path)


def test_empty_split_is_an_error(tmp_path):
    _write_split(tmp_path, "train", [json.dumps({"question": f"q{i}", "answer": "#### 1"}) for i in range(10)])
    (tmp_path / "test.jsonl").write_text("\n")
    with pytest.raises(DataError, match="the test split is empty"):
        load_splits(DataConfig(source="local", path=str(tmp_path)))


def test_prompt_uses_the_template_and_chat_format(tiny):
    text = system_prompt()
    for tag in ("<thinking>", "</thinking>", "<solution>", "</solution>", "2 + 3 = 5"):
        assert tag in text
    task = GSM8KTask()
    messages = task.messages("How many?")
    assert messages[0] == {"role": "system", "content": text}
    rendered = render_prompt(tiny.tokenizer, messages)
    assert rendered.endswith("<|im_start|>assistant\n")
    assert "How many?" in rendered and "<thinking>" in rendered
