"""benchmarks/gpu_screening.py --smoke: the GPU check's own code on CPU with the tiny model, without Ray or litellm.

The GPU image the check targets has neither ray nor litellm, so the run here blocks both imports: a module-level
import of either anywhere on the benchmark's path fails this test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

BLOCKER = """
import importlib.abc, sys

class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("ray", "litellm"):
            raise ImportError(f"{name} is not on the GPU image (blocked by the smoke test)")
        return None

sys.meta_path.insert(0, _Blocked())
"""


@pytest.mark.slow
def test_smoke_run_measures_every_stage(tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCKER)
    out = tmp_path / "gpu_screening.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    command = [sys.executable, str(REPO / "benchmarks" / "gpu_screening.py"), "--smoke", "--out", str(out)]
    # a generous budget: the check skips stages past its budget, and this test wants every stage measured
    proc = subprocess.run(
        [*command, "--budget-s", "1200"], env=env, capture_output=True, text=True, timeout=1500, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["smoke"] is True and report["device"] == "cpu" and report["gpu"]
    for backend in ("hf", "fast"):
        arm = report["backends"][backend]
        assert arm["generation_tokens_per_second"] > 0
        assert arm["completion_tokens_per_step"] == 4 * 16  # the paper's batch: 1 prompt x 4 completions, capped
        split = arm["generation_seconds_per_step"] + arm["update_seconds_per_step"]
        assert split == pytest.approx(arm["seconds_per_step"], abs=0.01)
        assert 0 < arm["generation_seconds_per_step"] < arm["seconds_per_step"]
    assert report["fast_over_hf_tokens_per_second"] > 0
    runs = report["packing"]["runs"]
    assert set(runs) == {"1", "2"}
    assert all(r["aggregate_steps_per_second"] > 0 for r in runs.values())
    assert len(runs["2"]["seconds_per_step_each"]) == 2
    assert report["packing"]["speedup"]["1"] == 1.0
    evaluation = report["evaluation"]
    for arm in ("merged", "unmerged"):
        for batch in ("1", "8"):
            assert evaluation[arm][batch]["tokens_per_second"] > 0
    assert "needs a GPU" in report["memory_cap"]["skipped"]
    blocked = subprocess.run([sys.executable, "-c", "import ray"], env=env, capture_output=True, text=True)
    assert blocked.returncode != 0 and "blocked by the smoke test" in blocked.stderr  # the guard was real


def _bench_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_screening", REPO / "benchmarks" / "gpu_screening.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gpu_screening", module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _report(measured, **stages):
    return {"gpu": "NVIDIA H200", "model": "random:llama-3.2-3b", "measured": measured, **stages}


def test_merge_keeps_an_earlier_sessions_stages_and_joins_packing_counts():
    bench = _bench_module()
    arms = {"hf": {"generation_tokens_per_second": 50.0}, "fast": {"generation_tokens_per_second": 200.0}}
    earlier = _report(
        "morning",
        backends=arms,
        packing={"runs": {"1": {"aggregate_steps_per_second": 0.05}, "2": {"aggregate_steps_per_second": 0.1}}},
    )
    later = _report("evening", packing={"runs": {"4": {"aggregate_steps_per_second": 0.16}}})
    merged = bench.merged_report(earlier, later, ["packing"])
    assert merged["backends"] == arms
    assert merged["fast_over_hf_tokens_per_second"] == 4.0  # recomputed from the kept arms
    assert list(merged["packing"]["runs"]) == ["1", "2", "4"]
    assert merged["packing"]["speedup"] == {"1": 1.0, "2": 2.0, "4": 3.2}
    assert merged["stages_from"] == {"backends": "morning", "packing": "evening"}
    # a third session keeps the provenance the second one recorded
    again = bench.merged_report(merged, _report("night", memory_cap={"holds": True}), ["memory_cap"])
    assert again["stages_from"] == {"backends": "morning", "packing": "evening", "memory_cap": "night"}


def test_merge_refuses_another_gpu_or_model():
    bench = _bench_module()
    other = {**_report("later"), "gpu": "NVIDIA H100"}
    with pytest.raises(ValueError, match="H200"):
        bench.merged_report(_report("earlier"), other, ["packing"])


def test_unknown_stage_is_a_usage_error():
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_screening.py"), "--smoke", "--stages", "packing,warp"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "--stages: unknown warp" in proc.stderr


def test_quantization_check_refuses_a_machine_without_a_gpu():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_quantization.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 2 and "no GPU visible" in proc.stderr and "Traceback" not in proc.stderr
