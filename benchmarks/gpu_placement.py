"""GPU check of a fractional trial's memory cap: a quarter-GPU trial trains a LoRA and cannot take more than its share.

The placement is resolved by the project's own rule (`training/placement.py`: Ray granting 0.25 of GPU 0) and the
cap applied by its `apply_memory_cap`, as a screening trial does. Then, in the same process:
1. LoRA training steps (r 32 on the 7 projections, AdamW) of a random-init Llama-3.2-1B in bf16, sized to fit the
   share: the peak allocated and reserved memory must stay under the cap;
2. allocation in 256 MiB blocks until CUDA refuses: the cap holds when the process never got more than its share.

Needs only torch, transformers and peft (the bare GPU image has them). Writes benchmarks/results/gpu_placement.json.

    python benchmarks/gpu_placement.py [--share 0.25] [--steps 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # a bare checkout on the GPU image (no editable install)
ARCH = REPO / "reward_search" / "training" / "architectures" / "llama-3.2-1b.json"
BLOCK = 256 * 2**20


def train_under_cap(steps: int, batch: int, length: int) -> dict:
    """LoRA steps of a random Llama-3.2-1B (bf16) on random tokens; peak memory and seconds per step."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    arch = json.loads(ARCH.read_text())
    arch.pop("architectures", None)
    config = AutoConfig.for_model(arch.pop("model_type"), **arch)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).to("cuda")
    modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = get_peft_model(model, LoraConfig(r=32, lora_alpha=32, target_modules=modules))
    model.gradient_checkpointing_enable()
    model.enable_input_require_grads()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        ids = torch.randint(0, config.vocab_size, (batch, length), device="cuda")
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    peak = {"allocated": torch.cuda.max_memory_allocated(), "reserved": torch.cuda.max_memory_reserved()}
    del model, optimizer, loss, ids
    torch.cuda.empty_cache()
    return {"steps": steps, "batch": batch, "length": length, "seconds_per_step": times[1:] or times, "peak": peak}


def allocate_until_refused(limit_bytes: int) -> dict:
    """Take 256 MiB blocks until CUDA refuses (or twice the cap is reached, which would mean no cap)."""
    import torch

    blocks, refused = [], False
    while len(blocks) * BLOCK < 2 * limit_bytes:
        try:
            blocks.append(torch.empty(BLOCK, dtype=torch.uint8, device="cuda"))
        except torch.OutOfMemoryError:
            refused = True
            break
    reached = len(blocks) * BLOCK
    del blocks
    torch.cuda.empty_cache()
    return {"refused": refused, "reached_bytes": reached}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--share", type=float, default=0.25)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "gpu_placement.json"))
    args = parser.parse_args()
    import torch

    from reward_search.training.placement import apply_memory_cap, resolve_placement

    if not torch.cuda.is_available():
        print("no GPU: this check needs one", file=sys.stderr)
        return 2
    placement = resolve_placement("auto", (args.share, ("0",)), cuda_available=True)  # Ray granted a share of GPU 0
    apply_memory_cap(placement)
    props = torch.cuda.get_device_properties(0)
    cap = int(props.total_memory * placement.memory_fraction)
    report = {
        "benchmark": "gpu_placement",
        "gpu": props.name,
        "total_bytes": props.total_memory,
        "torch": torch.__version__,
        "placement": placement.to_dict(),
        "cap_bytes": cap,
    }
    report["training"] = train_under_cap(args.steps, args.batch, args.length)
    report["training"]["under_cap"] = report["training"]["peak"]["reserved"] <= cap
    report["allocation"] = allocate_until_refused(cap)
    report["holds"] = (
        report["allocation"]["refused"]
        and report["allocation"]["reached_bytes"] <= cap
        and report["training"]["under_cap"]
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    gib = 2**30
    print(
        f"{props.name}: share {args.share} -> cap {cap / gib:.1f} GiB; LoRA training peak reserved "
        f"{report['training']['peak']['reserved'] / gib:.1f} GiB; allocation refused at "
        f"{report['allocation']['reached_bytes'] / gib:.1f} GiB; cap holds: {report['holds']}"
    )
    return 0 if report["holds"] else 1


if __name__ == "__main__":
    sys.exit(main())
