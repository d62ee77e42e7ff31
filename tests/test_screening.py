"""Screening runs on the smoke preset: real TRL GRPO + LoRA on the tiny model, real sandboxed candidates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from reward_search.candidates.candidate import RewardCandidate
from reward_search.config import load_config
from reward_search.errors import UserError
from reward_search.task import get_task
from reward_search.testing.advantages import advantages
from reward_search.training.curves import CurveRecorder, TrainingDiverged
from reward_search.training.screening import run_screening
from reward_search.training.spec import RewardSpec, trial_key
from reward_search.training.trainer import build_session
from reward_search.training.trial_cache import latest_checkpoint

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "experiments" / "smoke.yaml"
BENIGN = (REPO / "examples" / "rewards" / "numeric_closeness.py").read_text()

CRASHER = """
def always_fails(prompts, completions, **kwargs):
    raise ValueError("boom from candidate")
"""

# Bypasses the static policy on purpose (built directly, never validated): the sandbox alone must contain it.
HOSTILE = """
import sys
def meddler(prompts, completions, answer, **kwargs):
    for target in {targets!r}:
        try:
            open(target, "w").write("pwned")
        except Exception:
            pass
    try:
        import reward_search.task.base_rewards as base
        base.match_format_approximately = lambda *a, **k: [100.0] * len(completions)
    except Exception:
        pass
    try:
        answer[0] = "tampered"
    except Exception:
        pass
    return [float(len(str(c)) % 3) for c in completions]
"""


def smoke(*overrides: str):
    return load_config(SMOKE, list(overrides))


def benign_spec() -> RewardSpec:
    return RewardSpec((RewardCandidate.from_source(BENIGN),))


def test_smoke_run_curves_result_and_cache_hit(tmp_path):
    config = smoke()
    result = run_screening(config, benign_spec(), tmp_path / "trial", progress=False)
    assert result.status == "done", result.error
    assert result.steps == 2 and result.device == "cpu"
    assert result.reward_names == [
        "match_format_exactly",
        "match_format_approximately",
        "check_answer",
        "numeric_closeness",
    ]
    assert result.metrics["n"] == 4 and 0.0 <= result.metrics["accuracy"] <= 1.0
    assert result.train_seconds > 0 and result.tokens_generated > 0
    assert set(result.curve_summary["reward/numeric_closeness"]) == {"start", "end"}

    curves = pq.read_table(tmp_path / "trial" / "curves.parquet").to_pylist()
    assert [row["step"] for row in curves] == [1, 2]
    for column in (
        "rewards/numeric_closeness/mean",
        "rewards/numeric_closeness/std",
        "rewards/check_answer/mean",
        "reward",
        "frac_reward_zero_std",
        "completions/mean_length",
        "completions/clipped_ratio",
        "entropy",
        "step_time",
        "completion_tokens",
    ):
        assert column in curves[0], column
    assert (tmp_path / "trial" / "adapter" / "adapter_config.json").is_file()
    assert len(pq.read_table(tmp_path / "trial" / "selection.parquet")) == 4
    stored = json.loads((tmp_path / "trial" / "result.json").read_text())
    assert stored["key"] == result.key and stored["status"] == "done"
    trial = json.loads((tmp_path / "trial" / "trial.json").read_text())
    assert trial["config"]["training"]["steps"] == 2  # the resolved config is stored with the trial

    mtime = (tmp_path / "trial" / "curves.parquet").stat().st_mtime_ns
    started = time.perf_counter()
    again = run_screening(config, benign_spec(), tmp_path / "trial", progress=False)
    assert again.cached and again.key == result.key and again.metrics == result.metrics
    assert time.perf_counter() - started < 5
    assert (tmp_path / "trial" / "curves.parquet").stat().st_mtime_ns == mtime


def test_any_change_gives_a_new_key_and_never_reuses_a_folder(tmp_path):
    splits = get_task(smoke().data).load_splits()
    base = trial_key(smoke(), benign_spec(), splits.manifest)
    assert trial_key(smoke(), benign_spec(), splits.manifest) == base
    changed = [
        trial_key(smoke("training.learning_rate=2e-4"), benign_spec(), splits.manifest),
        trial_key(smoke("run.seed=1"), benign_spec(), splits.manifest),
        trial_key(smoke("model.spec=random:smollm2-135m"), benign_spec(), splits.manifest),
        trial_key(smoke(), RewardSpec(benign_spec().candidates, (0.5,)), splits.manifest),
        trial_key(smoke(), RewardSpec((RewardCandidate.from_source(BENIGN + "\n# v2\nX = 1\n"),)), splits.manifest),
        trial_key(smoke(), benign_spec(), get_task(smoke("data.dev_seed=9").data).load_splits().manifest),
    ]
    assert len({base, *changed}) == len(changed) + 1
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "trial.json").write_text(json.dumps({"key": "0" * 16}))
    with pytest.raises(UserError, match="holds a different trial"):
        run_screening(smoke(), benign_spec(), tmp_path / "t", progress=False)


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    out = tmp_path / "trial"
    reward_file = REPO / "examples" / "rewards" / "numeric_closeness.py"
    command = [
        sys.executable,
        "-m",
        "reward_search.cli",
        "screen",
        str(SMOKE),
        "--reward",
        str(reward_file),
        "--out",
        str(out),
        "--no-progress",
        "--json",
        "--set",
        "training.steps=12",
        "--set",
        "training.max_completion_length=48",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and latest_checkpoint(out / "checkpoints") is None:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    killed_at = latest_checkpoint(out / "checkpoints")
    assert killed_at is not None
    assert not (out / "result.json").exists() or json.loads((out / "result.json").read_text())["status"] != "done"

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    result = json.loads(rerun.stdout)
    assert result["status"] == "done" and result["steps"] == 12
    assert result["resumed_from_step"] >= int(killed_at.name.split("-")[1]) >= 1
    steps = [row["step"] for row in pq.read_table(out / "curves.parquet").to_pylist()]
    assert steps == list(range(1, 13))  # nothing lost, nothing duplicated


def test_hostile_candidate_cannot_affect_training(tmp_path):
    canaries = [tmp_path / "canary.txt", REPO / "canary.txt", tmp_path / "hostile" / "canary.txt"]
    hostile = RewardCandidate.from_source(HOSTILE.format(targets=[str(p) for p in canaries]))
    benign = run_screening(smoke("training.steps=1"), benign_spec(), tmp_path / "benign", progress=False)
    attacked = run_screening(smoke("training.steps=1"), RewardSpec((hostile,)), tmp_path / "hostile", progress=False)
    assert attacked.status == "done", attacked.error
    assert not any(p.exists() for p in canaries)
    first = {r["step"]: r for r in pq.read_table(tmp_path / "benign" / "curves.parquet").to_pylist()}[1]
    hit = {r["step"]: r for r in pq.read_table(tmp_path / "hostile" / "curves.parquet").to_pylist()}[1]
    for name in ("match_format_exactly", "match_format_approximately", "check_answer"):
        assert hit[f"rewards/{name}/mean"] == first[f"rewards/{name}/mean"]  # same generations, same base rewards
    assert hit["rewards/match_format_approximately/mean"] <= 2.0  # the monkeypatch did not reach the trainer
    assert benign.metrics["n"] == attacked.metrics["n"]


def test_crashing_candidate_ends_the_trial_as_crashed(tmp_path):
    spec = RewardSpec((RewardCandidate.from_source(CRASHER),))
    result = run_screening(
        smoke("training.steps=8", "candidates.max_failed_calls=2"), spec, tmp_path / "t", progress=False
    )
    assert result.status == "crashed"
    assert "always_fails" in result.error and "boom from candidate" in result.error
    assert result.steps < 8
    assert result.candidate_failures["sandbox/always_fails/failed_calls"] == 2
    assert not (tmp_path / "t" / "adapter").exists()


def test_nan_divergence_fails_the_trial_with_a_reason(tmp_path):
    config = smoke("training.learning_rate=1e30", "training.max_grad_norm=0", "training.steps=4")
    result = run_screening(config, RewardSpec(), tmp_path / "t", progress=False)
    assert result.status == "failed"
    assert "diverged" in result.error and "non-finite" in result.error
    recorder = CurveRecorder(tmp_path / "c.parquet", 4)
    with pytest.raises(TrainingDiverged, match="loss became nan at step 3"):
        recorder.on_log(None, type("S", (), {"global_step": 3})(), None, {"loss": float("nan"), "reward": 1.0})


SCALED = """
def big_scale(prompts, completions, **kwargs):
    return [1000.0 * (len(str(c)) % 5) for c in completions]
"""


@pytest.mark.parametrize("aggregation", ["sum_then_normalize", "normalize_then_sum"])
def test_aggregation_produces_the_documented_advantages(tmp_path, aggregation):
    """TRL's advantages after one real step equal our definition of the chosen aggregation (GDPO included)."""
    config = smoke(
        f"training.aggregation={aggregation}",
        "training.steps=1",
        "training.generations_per_prompt=4",
        "training.base_weights={match_format_exactly: 1.0, match_format_approximately: 2.0, check_answer: 1.0}",
        "training.temperature=1.5",
        "training.max_completion_length=12",
    )
    spec = RewardSpec((RewardCandidate.from_source(SCALED),), (0.5,))
    task = get_task(config.data)
    session = build_session(config, spec, task, task.load_splits(), tmp_path)
    try:
        session.trainer.train()
    finally:
        session.close()
    logs = session.trainer._logs
    names = ["match_format_exactly", "match_format_approximately", "check_answer", "big_scale"]
    rewards = np.array([list(logs["rewards"][name]) for name in names]).T
    got = np.array(list(logs["advantages"]))
    expected = advantages(rewards, [1.0, 2.0, 1.0, 0.5], group_size=4, aggregation=aggregation)
    assert np.allclose(got, expected, atol=1e-4)
    other = "normalize_then_sum" if aggregation == "sum_then_normalize" else "sum_then_normalize"
    if rewards[:, 3].std() > 0:
        assert not np.allclose(expected, advantages(rewards, [1.0, 2.0, 1.0, 0.5], 4, other), atol=1e-3)


def test_advantages_pure_function():
    pairs = [[1.0, 100.0], [0.0, 0.0]]
    plain = advantages(pairs, [1.0, 1.0], 2, "sum_then_normalize")
    assert plain[0] > 0 > plain[1] and plain[0] == pytest.approx(-plain[1])
    # a correct answer (reward 0: 1 vs 0) with a slightly lower large-scale reward (reward 1: 90 vs 100, 95)
    group = [[1.0, 90.0], [0.0, 100.0], [0.0, 95.0]]
    plain = advantages(group, [2.0, 1.0], 3, "sum_then_normalize")
    gdpo = advantages(group, [2.0, 1.0], 3, "normalize_then_sum")
    assert plain.argmin() == 0  # the raw sum lets the large-scale reward drown the correctness signal
    assert gdpo.argmax() == 0  # normalised per reward first, correctness wins
    with pytest.raises(ValueError, match="do not divide into groups"):
        advantages(pairs, [1.0, 1.0], 3)


@pytest.mark.slow
def test_one_trial_tuner_reports_intermediate_results_and_checkpoints(tmp_path):
    import ray
    from ray import tune

    from reward_search.training.trainable import screening_trainable, trial_params

    config = smoke("training.steps=3")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            tune.with_resources(screening_trainable, {"cpu": 1}),
            param_space=trial_params(config, benign_spec(), str(tmp_path / "trial")),
            run_config=tune.RunConfig(storage_path=str(tmp_path / "tune"), name="one", verbose=0),
        )
        grid = tuner.fit()
    finally:
        ray.shutdown()
    result = grid[0]
    assert result.error is None
    frame = result.metrics_dataframe
    intermediate = frame[~frame["final"].astype(bool)]
    assert list(intermediate["step"]) == [1, 2, 3]
    assert intermediate["dev_accuracy"].between(0, 1).all()
    assert "rewards/numeric_closeness/mean" in frame.columns
    assert frame["final"].astype(bool).iloc[-1] and frame["status"].iloc[-1] == "done"
    assert result.checkpoint is not None
    with result.checkpoint.as_directory() as folder:
        assert (Path(folder) / "adapter_model.safetensors").is_file()
        assert json.loads((Path(folder) / "trainer_state.json").read_text())["global_step"] == 3
    assert json.loads((tmp_path / "trial" / "result.json").read_text())["status"] == "done"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reward_search.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=300
    )


def test_cli_rejects_a_bad_reward_before_loading_a_model(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\ndef r(prompts, completions, **kw):\n    return [len(os.environ)] * len(completions)\n")
    started = time.perf_counter()
    proc = run_cli("screen", str(SMOKE), "--reward", str(bad), "--out", str(tmp_path / "t"))
    assert proc.returncode == 2
    assert "bad.py: rejected at policy" in proc.stderr and "line 1" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert time.perf_counter() - started < 20
    assert not (tmp_path / "t").exists()
    for args, message in (
        ((), "give at least one --reward"),
        (("--reward", str(REPO / "examples/rewards/numeric_closeness.py"), "--weights", "1,2"), "2 values for 1"),
        (("--reward", str(tmp_path / "missing.py")), "missing.py: no such file"),
    ):
        proc = run_cli("screen", str(SMOKE), *args)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def flaky_trainable(params: dict) -> None:
    """A screening trial whose first attempt dies after its first checkpoint (an infrastructure failure); the
    retry starts without the local checkpoints, as on another node, so it must resume from Tune's copy."""
    import shutil

    from reward_search.training import reporting
    from reward_search.training.trainable import screening_trainable

    trial_dir = Path(params["trial_dir"])
    marker = trial_dir.parent / "attempted"
    if not marker.exists():
        marker.write_text("1")
        original = reporting.TuneReporter.report

        def report_then_die(self, metrics, checkpoint_dir):
            original(self, metrics, checkpoint_dir)
            if checkpoint_dir is not None:
                raise RuntimeError("node lost")

        reporting.TuneReporter.report = report_then_die
    else:
        shutil.rmtree(trial_dir / "checkpoints", ignore_errors=True)
    screening_trainable(params)


@pytest.mark.slow
def test_tune_retry_resumes_from_the_reported_checkpoint(tmp_path):
    import ray
    from ray import cloudpickle, tune

    from reward_search.training.trainable import trial_params

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    config = smoke("training.steps=3")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        grid = tune.Tuner(
            tune.with_resources(flaky_trainable, {"cpu": 1}),
            param_space=trial_params(config, benign_spec(), str(tmp_path / "trial")),
            run_config=tune.RunConfig(
                storage_path=str(tmp_path / "tune"),
                name="retry",
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=1),
            ),
        ).fit()
    finally:
        ray.shutdown()
    assert grid[0].error is None
    result = json.loads((tmp_path / "trial" / "result.json").read_text())
    assert result["status"] == "done" and result["steps"] == 3
    assert result["resumed_from_step"] == 1  # restored from Tune's checkpoint, not retrained from scratch
    steps = [row["step"] for row in pq.read_table(tmp_path / "trial" / "curves.parquet").to_pylist()]
    assert steps == [1, 2, 3]
