"""GPU check of the paper's bitsandbytes settings: a 4-bit (QLoRA) base and 8-bit AdamW, in about a minute.

The paper's reference code loaded Llama-3.2-3B in 4-bit and trained its LoRA with 8-bit AdamW; experiments/
paper-fidelity.yaml does the same through this project's code (`model.quantization: 4bit`, `training.optimizer:
adamw_8bit`). This check runs those two pieces on a GPU without a download or TRL:

1. A random-init Llama (the real config, bf16) is saved to a temporary folder and loaded back through the project's
   own `models.load_model(..., quantization="4bit")`: GPU memory of the base in bf16 versus 4-bit, and the number of
   bitsandbytes 4-bit layers.
2. LoRA r=32 on the 7 projection modules of the 4-bit model, trained with the optimizer class the HF Trainer builds
   for `optim="adamw_8bit"` (the class TRL's GRPOTrainer uses): a few steps on one fixed batch, whose loss must fall;
   seconds per step and the optimizer state's bytes against fp32 AdamW's.

Writes JSON (default benchmarks/results/gpu_quantization.json) after each stage, naming the GPU.

    python benchmarks/gpu_quantization.py [--model llama-3.2-1b] [--steps 8] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # runs from a bare checkout (the GPU image has no editable install)
TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def save_random_model(name: str, folder: Path) -> dict[str, Any]:
    """A random-init model of architecture `name` in bf16 with the tiny tokenizer, saved as a Hugging Face folder."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from reward_search.training.models import _architecture, tiny_tokenizer_dir

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir())
    arch = dict(_architecture(name))
    model_type = arch.pop("model_type")
    arch.pop("architectures", None)
    config = AutoConfig.for_model(model_type, **arch, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    bf16_gb = torch.cuda.memory_allocated() / 2**30
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    params = sum(p.numel() for p in model.parameters())
    del model
    torch.cuda.empty_cache()
    return {"architecture": name, "parameters": params, "bf16_weights_gb": round(bf16_gb, 3)}


def load_4bit(folder: Path) -> tuple[Any, dict[str, Any]]:
    import torch

    from reward_search.training.models import load_model

    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    started = time.perf_counter()
    loaded = load_model(str(folder), dtype="bfloat16", device="cuda", quantization="4bit")
    seconds = time.perf_counter() - started
    layers = sum(type(m).__name__ == "Linear4bit" for m in loaded.model.modules())
    return loaded, {
        "load_seconds": round(seconds, 2),
        "weights_gb": round((torch.cuda.memory_allocated() - before) / 2**30, 3),
        "linear4bit_layers": layers,
        "quant_type": getattr(getattr(loaded.model.config, "quantization_config", None), "bnb_4bit_quant_type", None),
    }


def train_lora_8bit(loaded: Any, steps: int, workdir: Path) -> dict[str, Any]:
    """LoRA on the 4-bit model with the HF Trainer's adamw_8bit optimizer: loss over `steps` steps on one batch."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments

    model = get_peft_model(loaded.model, LoraConfig(r=32, lora_alpha=32, target_modules=TARGET_MODULES))
    model.train()
    args = TrainingArguments(output_dir=str(workdir), optim="adamw_8bit", learning_rate=2e-3, report_to=[])
    optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = optimizer_cls(trainable, **optimizer_kwargs)
    generator = torch.Generator().manual_seed(0)
    batch = torch.randint(0, 1024, (4, 256), generator=generator).cuda()  # the paper's 4 completions, fixed
    losses, seconds = [], []
    for _ in range(steps):
        torch.cuda.synchronize()
        started = time.perf_counter()
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
        losses.append(round(loss.item(), 4))
    state_bytes = sum(
        t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t)
    )
    lora_params = sum(p.numel() for p in trainable)
    return {
        "optimizer_class": f"{optimizer_cls.__module__}.{optimizer_cls.__name__}",
        "optimizer_kwargs": {k: str(v) for k, v in optimizer_kwargs.items()},
        "lora_params": lora_params,
        "steps": steps,
        "losses": losses,
        "loss_fell": losses[-1] < losses[0],
        "seconds_per_step_after_first": round(sum(seconds[1:]) / max(len(seconds) - 1, 1), 4),
        "optimizer_state_bytes": state_bytes,
        "fp32_adamw_state_bytes": 8 * lora_params,
        "state_ratio_vs_fp32": round(state_bytes / (8 * lora_params), 3),
        "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 3),
    }


def _stage(report: dict[str, Any], name: str, out: Path, run: Any) -> Any:
    """Run one stage; an error is recorded in the report rather than lost, and the report is saved either way."""
    try:
        value, figures = run()
        report[name] = figures
        return value
    except Exception as exc:  # recorded: the point of a device check
        report[name] = {"error": f"{type(exc).__name__}: {str(exc)[-1500:]}"}
        print(f"{name} failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return None
    finally:
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"{name}: {json.dumps(report.get(name))}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="llama-3.2-1b", help="random-init architecture (default llama-3.2-1b)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "gpu_quantization.json"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    if not torch.cuda.is_available():
        print("gpu_quantization: no GPU visible to torch; bitsandbytes 4-bit and 8-bit need one", file=sys.stderr)
        return 2
    import bitsandbytes
    import peft
    import transformers

    out = Path(args.out)
    report: dict[str, Any] = {
        "benchmark": "gpu_quantization",
        "gpu": torch.cuda.get_device_name(0),
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "bitsandbytes": bitsandbytes.__version__,
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        _stage(report, "model", out, lambda: (None, save_random_model(args.model, folder)))
        loaded = _stage(report, "load_4bit", out, lambda: load_4bit(folder))
        if loaded is not None:
            _stage(report, "lora_adamw_8bit", out, lambda: (None, train_lora_8bit(loaded, args.steps, Path(tmp))))
    bf16 = report.get("model", {}).get("bf16_weights_gb")
    four = report.get("load_4bit", {}).get("weights_gb")
    if bf16 and four:
        report["weights_4bit_over_bf16"] = round(four / bf16, 3)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
