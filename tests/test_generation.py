"""Generation backends (hf | fast | vllm) as TRL options, their validation, and evaluation on a merged LoRA copy."""

from __future__ import annotations

import importlib.util

import pytest

from reward_search.cli import main
from reward_search.config import EvalConfig, load_config
from reward_search.errors import UserError
from reward_search.task.gsm8k import GSM8KTask
from reward_search.training import generation, settings
from reward_search.training.evaluation import _evaluate, evaluate
from reward_search.training.generation import plan, plan_for, prepare_trainer, vllm_options


@pytest.fixture(scope="module")
def one_thread():
    """The tiny model runs fastest on one thread (and a busy CPU stalls spinning OpenMP threads)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("backend", "variant", "device", "expected"),
    [
        ("hf", None, "cpu", {"use_vllm": False}),
        ("fast", "compile", "cpu", {"cache_implementation": "static", "generation_kwargs": {"max_cache_len": 640}}),
        ("fast", "cb", "cpu", {"use_transformers_continuous_batching": True}),
    ],
)
def test_plans_are_real_grpo_options(backend, variant, device, expected, tmp_path):
    from trl import GRPOConfig

    chosen = plan(backend, device, 1.0, variant, max_cache_len=640)
    assert expected.items() <= chosen.grpo_options.items()
    args = GRPOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        bf16=False,
        per_device_train_batch_size=4,
        num_generations=4,
        **chosen.grpo_options,
    )
    for key, value in expected.items():
        assert getattr(args, key) == value


def test_fast_compiles_only_on_cuda_and_turns_trls_switch_back_off():
    from types import SimpleNamespace

    from transformers import GenerationConfig

    assert plan("fast", "cuda", variant="compile").compile_decode
    assert not plan("fast", "cpu", variant="compile").compile_decode  # transformers compiles on accelerators only
    trainer = SimpleNamespace(generation_config=GenerationConfig(disable_compile=True))
    prepare_trainer(trainer, plan("fast", "cpu", variant="compile"))
    assert trainer.generation_config.disable_compile
    prepare_trainer(trainer, plan("fast", "cuda", variant="compile"))
    assert not trainer.generation_config.disable_compile


def test_packed_trials_get_their_share_of_memory():
    assert vllm_options(1.0)["vllm_gpu_memory_utilization"] == 0.5
    assert vllm_options(0.25)["vllm_gpu_memory_utilization"] == 0.125
    assert vllm_options(0.25)["vllm_mode"] == "colocate"
    cb = plan("fast", "cpu", gpu_share=0.25, variant="cb").grpo_options
    assert cb["transformers_continuous_batching_config"] == {"max_memory_percent": 0.125}


def test_plan_follows_the_config_and_the_old_flag(monkeypatch):
    monkeypatch.delenv(generation.FAST_VARIANT_ENV, raising=False)
    config = load_config(None, ["training.generation=fast"])
    chosen = plan_for(config.training, config.search, "cpu")
    assert chosen.name == "fast:compile"
    t = config.training
    assert chosen.grpo_options["generation_kwargs"]["max_cache_len"] == t.max_prompt_length + t.max_completion_length
    monkeypatch.setenv(generation.FAST_VARIANT_ENV, "cb")
    assert plan_for(config.training, config.search, "cpu").name == "fast:cb"
    with pytest.raises(UserError, match="needs a CUDA GPU|vllm extra"):
        plan("vllm", "cpu")


def test_missing_vllm_extra_is_one_line_and_exit_2(capsys):
    code = main(["validate", "--set", "training.generation=vllm"])
    err = capsys.readouterr().err.strip()
    if importlib.util.find_spec("vllm") is None:
        assert code == 2
        assert len(err.splitlines()) == 1
        assert "training.generation" in err and "reward-search[vllm]" in err
    else:  # an environment with the extra installed accepts it
        assert code == 0


def test_too_old_transformers_is_named(monkeypatch):
    real = settings._version
    monkeypatch.setattr(settings, "_version", lambda name: "5.0.0" if name == "transformers" else real(name))
    problem = generation.backend_problem("fast")
    assert problem is not None and "transformers >= 5.8.0" in problem and "5.0.0" in problem
    assert generation.backend_problem("hf") is None
    assert "not one of" in generation.backend_problem("turbo")


@pytest.fixture(scope="module")
def adapted(one_thread):
    """The tiny model wrapped in a PEFT LoRA with non-zero weights, as a trainer holds it."""
    import torch
    from peft import LoraConfig, get_peft_model

    from reward_search.training.models import LoadedModel, load_model

    base = load_model("random:tiny", device="cpu", seed=0)
    lora = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj", "up_proj"], init_lora_weights=False)
    model = get_peft_model(base.model, lora)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.mul_(10)
    return LoadedModel(model, base.tokenizer, base.spec, base.source, "cpu")


@pytest.mark.slow
def test_merged_copy_gives_the_same_greedy_completions_and_leaves_the_model(adapted):
    import torch

    problems = GSM8KTask().load_splits().dev[:4]
    config = EvalConfig(batch_size=3, max_new_tokens=12)
    before = {k: v.clone() for k, v in adapted.model.state_dict().items()}
    unmerged = _evaluate(adapted, GSM8KTask(), problems, config, False, False)
    merged = evaluate(adapted, GSM8KTask(), problems, config, show_progress=False)
    assert merged.info["merged_adapter"] is True
    assert [r["completion"] for r in merged.records] == [r["completion"] for r in unmerged.records]
    after = adapted.model.state_dict()
    assert before.keys() == after.keys() and any("lora_" in k for k in after)
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.slow
def test_fast_backend_gives_the_same_greedy_completions(adapted):
    problems = GSM8KTask().load_splits().dev[:4]
    config = EvalConfig(batch_size=4, max_new_tokens=12)
    plain = evaluate(adapted, GSM8KTask(), problems, config, show_progress=False)
    fast = evaluate(adapted, GSM8KTask(), problems, config, show_progress=False, generation="fast")
    assert fast.info["generation"] == "fast"
    assert [r["completion"] for r in fast.records] == [r["completion"] for r in plain.records]
    assert fast.tokens_generated == plain.tokens_generated
