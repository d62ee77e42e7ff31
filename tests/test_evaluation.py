"""Batched evaluation on the tiny model (and briefly the embedded one): records, determinism, adapters, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from reward_search.config import EvalConfig
from reward_search.task.gsm8k import GSM8KTask
from reward_search.training.evaluation import attach_adapter, evaluate, generate_batched, write_result
from reward_search.training.models import load_model

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def problems():
    return GSM8KTask().load_splits().dev[:6]


def test_records_in_split_order_with_every_mode(tiny, problems):
    config = EvalConfig(batch_size=4, max_new_tokens=12, modes=("strict", "flexible", "math-verify"))
    result = evaluate(tiny, GSM8KTask(), problems, config, show_progress=False)
    assert [r["index"] for r in result.records] == [p.index for p in problems]
    assert [r["gold"] for r in result.records] == [p.answer for p in problems]
    for record in result.records:
        assert 1 <= record["completion_tokens"] <= 12
        for column in ("strict", "flexible", "math_verify"):
            assert f"extracted_{column}" in record and f"correct_{column}" in record
        assert record["correct"] == record["correct_strict"]
    assert result.tokens_generated == sum(r["completion_tokens"] for r in result.records)
    assert set(result.metrics_by_mode) == {"strict", "flexible", "math-verify"}
    assert result.metrics.n == len(problems)


def test_deterministic(tiny, problems):
    config = EvalConfig(batch_size=3, max_new_tokens=10)
    first = evaluate(tiny, GSM8KTask(), problems, config, show_progress=False)
    second = evaluate(tiny, GSM8KTask(), problems, config, show_progress=False)
    assert [r["completion"] for r in first.records] == [r["completion"] for r in second.records]


def test_batched_matches_one_at_a_time(tiny, problems):
    """Left padding must not change what a prompt generates (attention masks and positions are right)."""
    task = GSM8KTask()
    from reward_search.task import render_prompt

    prompts = [render_prompt(tiny.tokenizer, task.messages(p.question)) for p in problems]
    batched = generate_batched(tiny, prompts, max_new_tokens=8, batch_size=len(prompts))
    single = generate_batched(tiny, prompts, max_new_tokens=8, batch_size=1)
    lengths = {len(tiny.tokenizer(p)["input_ids"]) for p in prompts}
    assert len(lengths) > 1  # the batch really was padded
    assert [g.text for g in batched] == [g.text for g in single]


def test_completions_are_graded_correctly(tiny, problems):
    """A model that answers correctly scores 1.0: feed the gold back through the grading path."""
    from reward_search.training.evaluation import Generation, grade_records

    generations = [Generation(f"<thinking>w</thinking><solution>{p.answer}</solution>", 9) for p in problems]
    records = grade_records(problems, generations, ["strict", "flexible"], "strict")
    assert all(r["correct"] for r in records)
    wrong = [Generation("<thinking>w</thinking><solution>-99999</solution>", 9) for _ in problems]
    assert not any(r["correct"] for r in grade_records(problems, wrong, ["strict"], "strict"))


def test_adapter_changes_the_output(tiny, problems, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    base = load_model("random:tiny", device="cpu", seed=0)
    peft_model = get_peft_model(
        base.model, LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_" in name:
                param.mul_(40)
    peft_model.save_pretrained(tmp_path / "adapter")

    config = EvalConfig(batch_size=6, max_new_tokens=10)
    plain = evaluate(tiny, GSM8KTask(), problems, config, show_progress=False)
    fresh = load_model("random:tiny", device="cpu", seed=0)
    adapted = evaluate(attach_adapter(fresh, tmp_path / "adapter"), GSM8KTask(), problems, config, show_progress=False)
    assert [r["completion"] for r in plain.records] != [r["completion"] for r in adapted.records]


def test_write_result_files(tiny, problems, tmp_path):
    result = evaluate(tiny, GSM8KTask(), problems[:2], EvalConfig(max_new_tokens=4), show_progress=False)
    write_result(result, tmp_path / "out", {"split": "dev"})
    table = pq.read_table(tmp_path / "out" / "records.parquet").to_pylist()
    assert [r["index"] for r in table] == [p.index for p in problems[:2]]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["n"] == 2 and metrics["split"] == "dev" and "by_mode" in metrics
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_embedded_model_generates(embedded_dir, problems):
    loaded = load_model("embedded", device="cpu")
    result = evaluate(loaded, GSM8KTask(), problems[:2], EvalConfig(max_new_tokens=24), show_progress=False)
    assert all(len(r["completion"].strip()) > 0 for r in result.records)
    assert result.tokens_generated > 10


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reward_search.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={**os.environ},
    )


def test_cli_evaluate_end_to_end(tmp_path):
    proc = run_cli(
        "evaluate",
        str(REPO / "experiments" / "smoke.yaml"),
        "--limit",
        "3",
        "--out",
        str(tmp_path / "ev"),
        "--json",
        "--no-progress",
    )
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert printed["n"] == 3 and printed["model"] == "random:tiny"
    assert len(pq.read_table(tmp_path / "ev" / "records.parquet")) == 3
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert saved["config"]["eval"]["limit"] == 3
    assert saved["data"]["splits"]["dev"]["size"] == 20


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("evaluate", "--model", "random:nope"), "unknown architecture"),
        (("evaluate", "--limit", "0"), "eval.limit: must be at least 1"),
        (("evaluate", "--set", "data.source=local", "--set", "data.path=/no/such/dir"), "data.path: folder"),
        (("evaluate", "--model", "random:tiny", "--adapter", "/no/adapter"), "is not a LoRA adapter folder"),
        (("validate", "missing.yaml"), "missing.yaml: experiment file not found"),
        (("data", "--set", "data.dev_size=abc"), "data.dev_size: expected int or null"),
    ],
)
def test_cli_user_errors_are_one_line_exit_2(args, message):
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_help_and_data():
    proc = run_cli("--help")
    assert proc.returncode == 0 and "evaluate" in proc.stdout and "--set" in proc.stdout
    proc = run_cli("data", "--json")
    assert proc.returncode == 0
    manifest = json.loads(proc.stdout)
    assert manifest["splits"]["dev"]["size"] == 50 and len(manifest["splits"]["test"]["sha256"]) == 64
