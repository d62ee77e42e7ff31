"""`reward-search estimate`: workload from the config, figures measured or assumed (and labelled), packing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reward_search.cli import main
from reward_search.config import load_config
from reward_search.ops.estimate import estimate, schedule_hours
from reward_search.ops.figures import load_figures, model_family

REPO = Path(__file__).resolve().parent.parent
PAPER = REPO / "experiments" / "paper.yaml"


def _measured(
    folder: Path, gpu: str = "NVIDIA H100 80GB HBM3", tokens_per_s: float = 720.0, backend: str = "fast"
) -> Path:
    """A results file shaped like benchmarks/gpu_screening.py's output."""
    data = {
        "benchmark": "gpu_screening",
        "smoke": False,
        "device": "cuda",
        "gpu": gpu,
        "model": "random:llama-3.2-3b",
        "backends": {backend: {"generation_tokens_per_second": tokens_per_s, "update_seconds_per_1k_tokens": 0.3}},
        "evaluation": {"merged": {"1": {"tokens_per_second": 50.0}, "64": {"tokens_per_second": 2500.0}}},
        "packing": {"speedup": {"1": 1.0, "2": 1.8, "4": 3.0}},
    }
    path = folder / "gpu_screening.json"
    path.write_text(json.dumps(data))
    return folder


def test_model_family_from_specs():
    assert model_family("meta-llama/Llama-3.2-3B-Instruct") == "llama-3.2-3b"
    assert model_family("random:llama-3.2-1b") == "llama-3.2-1b"
    assert model_family("embedded") == "smollm2-135m"
    assert model_family("Qwen/Qwen2.5-7B") is None


def test_without_measurements_every_figure_is_assumed(tmp_path):
    result = estimate(load_config(PAPER), gpus=8, results=tmp_path)
    assert all(f["source"].startswith("assumed") for f in result.figures.values())
    search, final = result.phases
    assert search.trials == 50 and search.steps == 50 * 500
    assert final.trials == 7 + 2 + 2  # the recipes, baseline, random control, two more seeds of the best recipe
    assert search.gpu_hours > 0 and search.wall_hours > 0 and search.usd == pytest.approx(search.gpu_hours * 3.0)
    # one GPU per trial on 8 GPUs: the GPU-hours are spread over 8 slots, rounds wait for one another
    assert search.wall_hours >= search.gpu_hours / 8


def test_measured_figures_are_used_for_that_gpu_only(tmp_path):
    config = load_config(PAPER)
    assumed = estimate(config, gpus=8, results=tmp_path)
    measured = estimate(config, gpus=8, results=_measured(tmp_path))
    source = measured.figures["generation tokens/s (fast)"]["source"]  # paper.yaml generates with `fast`
    assert source.startswith("measured") and "H100" in source
    assert measured.figures["evaluation tokens/s at batch 64"]["value"] == 2500.0
    assert measured.phases[0].gpu_hours < assumed.phases[0].gpu_hours  # 2x the assumed generation speed
    other = estimate(config, gpus=8, gpu_type="h200", results=tmp_path)
    assert other.figures["generation tokens/s (fast)"]["source"].startswith("assumed")


def test_packing_divides_gpu_hours_by_the_gain(tmp_path):
    alone = estimate(load_config(PAPER), gpus=8, results=tmp_path)
    packed = estimate(load_config(PAPER, ["search.gpus_per_trial=0.25"]), gpus=8, results=tmp_path)
    assert packed.per_gpu == 4 and packed.slots == 32
    assert packed.phases[0].gpu_hours == pytest.approx(alone.phases[0].gpu_hours / 2.0)  # assumed gain at 4: 2.0
    measured = estimate(load_config(PAPER, ["search.gpus_per_trial=0.25"]), gpus=8, results=_measured(tmp_path))
    assert measured.figures["packing gain, 4 trials per GPU"]["value"] == 3.0
    assert measured.figures["packing gain, 4 trials per GPU"]["source"].startswith("measured")


def test_steady_and_async_fill_slots_across_rounds_and_barrier_waits_for_each(tmp_path):
    """10 candidates on 8 GPUs: a barrier round runs two waves (6 slots idle in the second); steady and async
    start the next round's trials in those slots, so 50 candidates take 7 waves instead of 10."""
    barrier = estimate(load_config(PAPER), gpus=8, results=tmp_path).phases[0]
    for mode in ("steady", "async"):
        other = estimate(load_config(PAPER, [f"search.mode={mode}"]), gpus=8, results=tmp_path).phases[0]
        assert other.gpu_hours == pytest.approx(barrier.gpu_hours)  # the same trials
        assert other.wall_hours == pytest.approx(barrier.wall_hours * 7 / 10)


def test_schedule_fills_slots_longest_first():
    assert schedule_hours([3600.0] * 5, 4) == pytest.approx(2.0)
    assert schedule_hours([7200.0, 3600.0, 3600.0], 2) == pytest.approx(2.0)


def test_loaded_figures_prefer_the_measured_backend(tmp_path):
    results = _measured(tmp_path, backend="hf")
    figures = load_figures("h100", "meta-llama/Llama-3.2-3B-Instruct", "fast", results=results)
    assert figures.generation_tokens_per_s.source.startswith("assumed")  # only hf was measured
    assert figures.eval_tokens_per_s[64].source.startswith("measured")


def test_cli_prints_the_table_and_names_assumed_figures(tmp_path, capsys):
    assert main(["estimate", str(PAPER), "--gpus", "8", "--figures", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for phase in ("search", "finalize", "total"):
        assert f"\n{phase} " in out
    assert "assumed   generation tokens/s (fast)" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--gpus", "8", "--gpu-type", "tpu"], "--gpu-type 'tpu'"),
        (["--gpus", "0"], "--gpus 0"),
        (["--gpus", "1", "--set", "search.gpus_per_trial=2"], "fewer than search.gpus_per_trial"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(args, needle, capsys, tmp_path):
    assert main(["estimate", str(PAPER), *args, "--figures", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_evaluation_speed_between_measured_batches_is_interpolated(tmp_path):
    from reward_search.ops.figures import eval_speed

    figures = load_figures("h100", "random:llama-3.2-3b", "hf", results=_measured(tmp_path))
    assert eval_speed(figures, 64).value == 2500.0
    middle = eval_speed(figures, 32)
    assert 50.0 < middle.value < 2500.0 and "interpolated" in middle.source
    assert eval_speed(figures, 128).value == 2500.0  # beyond the largest measured batch: that batch's figure
