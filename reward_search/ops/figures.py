"""The per-step, per-question and packing figures a cost estimate rests on: measured where a benchmark measured
them for this model and GPU (`benchmarks/results/gpu_screening*.json`), assumed otherwise, and always labelled.

The assumed figures are round numbers for an H100 and Llama-3.2-3B at the paper's batch (1 prompt x 4
completions), scaled by model size and by GPU type; they are there so that an estimate exists before any
measurement, and the estimate says which ones it used.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"

# Relative speed of a GPU type against an H100 for this workload (small-batch generation is bandwidth bound).
GPU_SPEED = {"h100": 1.0, "h200": 1.25, "a100": 0.6, "l40s": 0.45, "a10g": 0.25, "l4": 0.2}
# On-demand list price per GPU-hour in US dollars (assumed; pass --usd-per-gpu-hour for your own).
GPU_PRICE = {"h100": 3.0, "h200": 3.8, "a100": 1.8, "l40s": 1.2, "a10g": 1.0, "l4": 0.8}
# Billions of parameters of the shipped architectures (the assumed figures scale with it).
MODEL_BILLIONS = {"llama-3.2-3b": 3.21, "llama-3.2-1b": 1.24, "smollm2-135m": 0.135, "tiny": 0.0002}
REFERENCE_MODEL = "llama-3.2-3b"

# Assumed, H100 + Llama-3.2-3B, bf16, LoRA r=32, 1 prompt x 4 completions, HF generate (the `hf` backend).
ASSUMED_GENERATION_TOKENS_PER_S = {"hf": 120.0, "fast": 360.0, "vllm": 600.0}
ASSUMED_UPDATE_S_PER_1K_TOKENS = 0.6  # forward + backward + optimizer step per 1,000 completion tokens
ASSUMED_EVAL_TOKENS_PER_S = {1: 35.0, 64: 1800.0}  # merged model, greedy
ASSUMED_PACKING = {1: 1.0, 2: 1.5, 4: 2.0}  # aggregate steps/s of k trials on one GPU over one trial


@dataclass(frozen=True)
class Figure:
    """One number and where it came from (`measured: FILE (GPU)` or `assumed: why`)."""

    value: float
    source: str

    @property
    def measured(self) -> bool:
        return self.source.startswith("measured")


@dataclass(frozen=True)
class Figures:
    """Everything an estimate multiplies: generation speed, update cost, evaluation speed, packing gain, price."""

    gpu_type: str
    model: str
    backend: str
    generation_tokens_per_s: Figure
    update_s_per_1k_tokens: Figure
    eval_tokens_per_s: dict[int, Figure]
    packing: dict[int, Figure]
    usd_per_gpu_hour: Figure
    notes: tuple[str, ...] = field(default=())

    def all(self) -> dict[str, Figure]:
        named = {
            f"generation tokens/s ({self.backend})": self.generation_tokens_per_s,
            "update s per 1k completion tokens": self.update_s_per_1k_tokens,
            "USD per GPU-hour": self.usd_per_gpu_hour,
        }
        named.update({f"evaluation tokens/s at batch {b}": f for b, f in sorted(self.eval_tokens_per_s.items())})
        named.update({f"packing gain, {k} trials per GPU": f for k, f in sorted(self.packing.items())})
        return named


def model_family(spec: str) -> str | None:
    """The shipped architecture a model spec is (`meta-llama/Llama-3.2-3B-Instruct` -> `llama-3.2-3b`), or None."""
    text = spec.lower().removeprefix("random:")
    if text == "embedded":
        return "smollm2-135m"
    for name in sorted(MODEL_BILLIONS, key=len, reverse=True):
        if re.search(rf"(^|[^a-z0-9]){re.escape(name)}([^0-9]|$)", text):
            return name
    return None


def gpu_type_of(name: str) -> str | None:
    """`NVIDIA H100 80GB HBM3` -> `h100`; None for a CPU or an unknown card."""
    lowered = name.lower().replace(" ", "")
    for kind in sorted(GPU_SPEED, key=len, reverse=True):
        if kind in lowered:
            return kind
    return None


def measured_runs(results: Path = RESULTS) -> list[tuple[Path, dict[str, Any]]]:
    """Every GPU (not smoke) run of benchmarks/gpu_screening.py found in `results`."""
    runs = []
    for path in sorted(results.glob("gpu_screening*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if data.get("benchmark") == "gpu_screening" and not data.get("smoke") and data.get("device") == "cuda":
            runs.append((path, data))
    return runs


def _find_run(gpu_type: str, family: str | None, results: Path) -> tuple[Path, dict[str, Any]] | None:
    for path, data in measured_runs(results):
        if gpu_type_of(str(data.get("gpu", ""))) == gpu_type and model_family(str(data.get("model", ""))) == family:
            return path, data
    return None


def _scale(gpu_type: str, family: str | None) -> tuple[float, str]:
    """Speed factor of the assumed figures for this GPU and model, and how it was derived."""
    speed = GPU_SPEED.get(gpu_type, 1.0)
    billions = MODEL_BILLIONS.get(family or "", MODEL_BILLIONS[REFERENCE_MODEL])
    factor = speed * MODEL_BILLIONS[REFERENCE_MODEL] / max(billions, 0.5)
    return factor, f"assumed: H100 + Llama-3.2-3B figure x {factor:.2f} for {gpu_type} and {family or '3B-sized'}"


def assumed_figures(gpu_type: str, family: str | None, backend: str, usd: float | None) -> Figures:
    """Round-number figures for a GPU type and model family, each labelled as assumed."""
    factor, why = _scale(gpu_type, family)
    generation = ASSUMED_GENERATION_TOKENS_PER_S.get(backend, ASSUMED_GENERATION_TOKENS_PER_S["hf"])
    return Figures(
        gpu_type=gpu_type,
        model=family or "unknown",
        backend=backend,
        generation_tokens_per_s=Figure(generation * factor, why),
        update_s_per_1k_tokens=Figure(ASSUMED_UPDATE_S_PER_1K_TOKENS / factor, why),
        eval_tokens_per_s={b: Figure(v * factor, why) for b, v in ASSUMED_EVAL_TOKENS_PER_S.items()},
        packing={k: Figure(v, "assumed: no packing measurement for this GPU") for k, v in ASSUMED_PACKING.items()},
        usd_per_gpu_hour=_price(gpu_type, usd),
    )


def _price(gpu_type: str, usd: float | None) -> Figure:
    if usd is not None:
        return Figure(usd, "given: --usd-per-gpu-hour")
    return Figure(GPU_PRICE.get(gpu_type, GPU_PRICE["h100"]), f"assumed: on-demand list price of an {gpu_type}")


def load_figures(
    gpu_type: str, model_spec: str, backend: str, usd: float | None = None, results: Path = RESULTS
) -> Figures:
    """Measured figures for this GPU type and model where a run exists, assumed ones (labelled) elsewhere."""
    family = model_family(model_spec)
    figures = assumed_figures(gpu_type, family, backend, usd)
    found = _find_run(gpu_type, family, results)
    if found is None:
        return figures
    path, data = found
    where = f"measured: {path.name} ({data.get('gpu')})"
    updates: dict[str, Any] = {}
    arm = (data.get("backends") or {}).get(backend) or {}
    if arm.get("generation_tokens_per_second"):
        updates["generation_tokens_per_s"] = Figure(float(arm["generation_tokens_per_second"]), where)
    if arm.get("update_seconds_per_1k_tokens"):
        updates["update_s_per_1k_tokens"] = Figure(float(arm["update_seconds_per_1k_tokens"]), where)
    merged = (data.get("evaluation") or {}).get("merged") or {}
    evals = dict(figures.eval_tokens_per_s)
    for batch, value in merged.items():
        if isinstance(value, dict) and value.get("tokens_per_second"):
            evals[int(batch)] = Figure(float(value["tokens_per_second"]), where)
    packing = dict(figures.packing)
    for count, value in ((data.get("packing") or {}).get("speedup") or {}).items():
        packing[int(count)] = Figure(float(value), where)
    return dataclasses.replace(figures, **updates, eval_tokens_per_s=evals, packing=packing)


def packing_gain(figures: Figures, per_gpu: int) -> Figure:
    """The aggregate-throughput gain of `per_gpu` trials on one GPU: the figure for that count, else the nearest
    smaller measured count (a conservative reading)."""
    if per_gpu in figures.packing:
        return figures.packing[per_gpu]
    below = [k for k in figures.packing if k <= per_gpu]
    nearest = max(below) if below else 1
    base = figures.packing.get(nearest, Figure(1.0, "assumed: no gain"))
    return Figure(base.value, f"{base.source}; read at {nearest} trials per GPU for {per_gpu}")


def eval_speed(figures: Figures, batch_size: int) -> Figure:
    """Evaluation tokens/s at `batch_size`: the figure for that batch, else a straight line between the measured
    batches around it (small-batch decoding is bandwidth bound, so throughput grows about linearly), else the
    nearest end."""
    speeds = figures.eval_tokens_per_s
    if batch_size in speeds:
        return speeds[batch_size]
    below = [b for b in speeds if b < batch_size]
    above = [b for b in speeds if b > batch_size]
    if not below or not above:
        return speeds[max(below) if below else min(above)]
    low, high = max(below), min(above)
    share = (batch_size - low) / (high - low)
    value = speeds[low].value + share * (speeds[high].value - speeds[low].value)
    return Figure(value, f"{speeds[high].source}; interpolated between batch {low} and {high}")
