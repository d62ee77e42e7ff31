"""The search service on a real local Ray: rounds, leaderboard actor, resume, multi-node scheduling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import ray

from reward_search.config import load_config
from reward_search.search.leaderboard import LeaderboardCore, leaderboard_actor, load_entries, namespace_for

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "experiments" / "smoke.yaml"

pytestmark = pytest.mark.slow


@pytest.fixture
def no_ray():
    if ray.is_initialized():
        ray.shutdown()
    yield
    if ray.is_initialized():
        ray.shutdown()


def search_config(tmp_path: Path, *overrides: str):
    return load_config(
        SMOKE,
        [
            f"run.storage_path={tmp_path}",
            "run.name=search",
            "search.rounds=2",
            "search.candidates_per_round=2",
            "search.cpus_per_trial=1",
            "search.dashboard=false",
            *overrides,
        ],
    )


def test_two_rounds_end_to_end_with_a_leaderboard_kill(tmp_path, no_ray):
    from reward_search.search.driver import run_search

    config = search_config(tmp_path)
    run_dir = tmp_path / "search"
    killed = threading.Event()

    def kill_leaderboard_after_first_result() -> None:
        deadline = time.time() + 300
        while time.time() < deadline:
            manifest = run_dir / "manifest.json"
            if manifest.is_file() and any(e.status == "done" for e in load_entries(run_dir)):
                run_id = json.loads(manifest.read_text())["run_id"]  # the actor is named by run id, not name
                actor = ray.get_actor("leaderboard", namespace=namespace_for(run_id))
                ray.kill(actor, no_restart=False)
                killed.set()
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=kill_leaderboard_after_first_result, daemon=True)
    watcher.start()
    outcome = run_search(config, verbose=False, finalize=False)  # the rounds are under test; finalize has its own
    watcher.join(5)
    assert killed.is_set(), "the leaderboard actor was never killed"

    entries = load_entries(run_dir)
    accepted = [e for e in entries if e.status != "rejected"]
    assert {e.round for e in accepted} == {1, 2}
    assert len([e for e in accepted if e.round == 1]) == 2 and len([e for e in accepted if e.round == 2]) == 2
    assert all(e.status == "done" for e in accepted), [(e.name, e.status, e.reasons) for e in accepted]
    assert all(e.accuracy is not None and e.n == 4 and e.trial_key for e in accepted)
    assert {e.candidate_id for e in outcome.entries} == {e.candidate_id for e in entries}
    # round 2 was conditioned on round 1: its children name round-1 candidates as parents
    round1 = {e.candidate_id for e in entries if e.round == 1}
    assert any(set(e.parents) & round1 for e in entries if e.round == 2)
    for e in accepted:  # every candidate has its immutable file and a trial folder with a result
        assert (run_dir / "candidates" / f"{e.candidate_id}.json").is_file()
        assert json.loads((Path(e.trial_dir) / "result.json").read_text())["status"] == "done"
    assert (run_dir / "config.yaml").is_file() and (run_dir / "manifest.json").is_file()
    state = json.loads((run_dir / "driver_state.json").read_text())
    assert state["proposed_rounds"] == [1, 2]


def test_leaderboard_actor_restarts_without_losing_anything(tmp_path, no_ray):
    from reward_search.candidates.candidate import RewardCandidate

    ray.init(address="local", num_cpus=1, include_dashboard=False, namespace="lb-test")
    actor = leaderboard_actor(tmp_path, "lb-test")
    source = "def r(prompts, completions, **kw):\n    return [1.0 for _ in completions]\n"
    candidate = RewardCandidate.from_source(source)
    assert ray.get(actor.add_candidate.remote(candidate.to_dict(), 1, "accepted", []))
    ray.get(actor.update.remote(candidate.id, status="done", accuracy=0.5, correct=5, n=10))
    ray.kill(actor, no_restart=False)
    deadline = time.time() + 60
    while True:
        try:
            entry = ray.get(actor.get.remote(candidate.id), timeout=30)
            break
        except ray.exceptions.RayActorError:
            assert time.time() < deadline
            time.sleep(0.5)
    assert entry.status == "done" and entry.accuracy == 0.5
    assert entry.ci_low < 0.5 < entry.ci_high
    assert LeaderboardCore(str(tmp_path)).get(candidate.id).accuracy == 0.5  # and it is on disk


def test_killed_driver_resumes_without_retraining(tmp_path, no_ray):
    run_dir = tmp_path / "search"
    command = [
        sys.executable,
        "-m",
        "reward_search.cli",
        "run",
        str(SMOKE),
        "--run-dir",
        str(run_dir),
        "--set",
        "search.rounds=2",
        "--set",
        "search.candidates_per_round=2",
        "--set",
        "search.dashboard=false",
        "--set",
        "search.max_concurrent_trials=1",
        "--set",
        "finalize.enabled=false",  # the rounds are what resume; finalize's own kill-and-resume is in test_finalize
    ]
    env = {**os.environ, "RAY_ADDRESS": ""}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, env=env)
    deadline = time.time() + 400
    try:
        while time.time() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            if (run_dir / "candidates").is_dir():
                rows = load_entries(run_dir)  # the Parquet snapshot and the event log after it
                round1 = [r for r in rows if r.round == 1 and r.status != "rejected"]
                if len(round1) == 2 and all(r.status == "done" for r in round1):
                    break
            time.sleep(0.2)
        else:
            pytest.fail("round 1 did not finish in time")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    done_before = {e.candidate_id: e for e in load_entries(run_dir) if e.status == "done"}
    assert len(done_before) >= 2
    stamps = {cid: (Path(e.trial_dir) / "curves.parquet").stat().st_mtime_ns for cid, e in done_before.items()}

    resumed = subprocess.run(
        [sys.executable, "-m", "reward_search.cli", "resume", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    entries = load_entries(run_dir)
    accepted = [e for e in entries if e.status != "rejected"]
    assert len([e for e in accepted if e.round == 1]) == 2 and len([e for e in accepted if e.round == 2]) == 2
    assert all(e.status == "done" for e in accepted)
    for cid, stamp in stamps.items():  # finished candidates were not retrained
        assert (Path(done_before[cid].trial_dir) / "curves.parquet").stat().st_mtime_ns == stamp
    status = subprocess.run(
        [sys.executable, "-m", "reward_search.cli", "status", str(run_dir)], capture_output=True, text=True, timeout=120
    )
    assert status.returncode == 0 and "round 2 of 2" in status.stdout


def cheap_trainable(params: dict) -> None:
    """Stands in for a screening run: records where it ran (node, GPU) and when, then reports a final result."""
    from ray import tune

    context = ray.get_runtime_context()
    record = {
        "candidate": params["candidate"],
        "node": context.get_node_id(),
        "gpus": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "start": time.time(),
    }
    folder = Path(params["config"]["run"]["storage_path"])
    with (folder / "starts.jsonl").open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    time.sleep(8.0)  # long enough that all four overlap even when trial workers start slowly
    record["end"] = time.time()
    with (folder / "placements.jsonl").open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    tune.report(
        {
            "final": True,
            "status": "done",
            "selection_accuracy": 0.25,
            "selection_f1": 0.4,
            "selection_correct": 1,
            "selection_n": 4,
            "trial_key": params["candidate_id"],
            "train_seconds": 3.0,
        }
    )


def test_multi_node_gpu_placement_and_node_loss(tmp_path, no_ray):
    from ray import cloudpickle
    from ray.cluster_utils import Cluster

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module

    from reward_search.search.driver import run_search

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "num_gpus": 0})
    workers = [cluster.add_node(num_cpus=4, num_gpus=2) for _ in range(2)]
    cluster.wait_for_nodes()
    try:
        config = search_config(
            tmp_path,
            "search.rounds=1",
            "search.candidates_per_round=4",
            "search.gpus_per_trial=1",
            "search.cpus_per_trial=1",
            "search.max_failures=3",
            "search.cluster_share=1.0",  # the only search on this cluster (a shared one defaults to half)
        )
        outcome = run_search(config, address=cluster.address, trainable=cheap_trainable, finalize=False, verbose=False)
        placements = [json.loads(line) for line in (tmp_path / "placements.jsonl").read_text().splitlines()]
        assert len(placements) == 4
        pairs = {(p["node"], p["gpus"]) for p in placements}
        assert len(pairs) == 4  # four distinct (node, GPU) pairs
        latest_start = max(p["start"] for p in placements)
        assert all(p["end"] > latest_start for p in placements)  # all four ran at the same time
        assert all(e.status == "done" for e in outcome.entries if e.status != "rejected")

        # node loss mid-round: a second search; a worker node is removed while a trial runs on it
        ray.shutdown()
        for name in ("placements.jsonl", "starts.jsonl"):
            (tmp_path / name).unlink()
        victim = workers[0]
        removed: list[str] = []

        def remove_when_busy() -> None:
            deadline = time.time() + 120
            while time.time() < deadline:
                starts = tmp_path / "starts.jsonl"
                if starts.is_file():
                    for line in starts.read_text().splitlines():
                        record = json.loads(line)
                        if record["node"] == victim.node_id:
                            removed.append(record["candidate"])
                            cluster.remove_node(victim)
                            return
                time.sleep(0.05)

        config2 = search_config(
            tmp_path,
            "run.name=second",
            "search.rounds=1",
            "search.candidates_per_round=4",
            "search.gpus_per_trial=1",
            "search.max_failures=3",
            "search.cluster_share=1.0",
            "proposer.seed=7",
        )
        remover = threading.Thread(target=remove_when_busy, daemon=True)
        remover.start()
        outcome2 = run_search(
            config2, address=cluster.address, trainable=cheap_trainable, finalize=False, verbose=False
        )
        remover.join(5)
        assert removed, "no trial ever started on the node to remove"
        accepted = [e for e in outcome2.entries if e.status != "rejected"]
        assert len(accepted) == 4 and all(e.status == "done" for e in accepted)  # nothing lost
        finished = [json.loads(line) for line in (tmp_path / "placements.jsonl").read_text().splitlines()]
        retried = [r for r in finished if r["candidate"] == removed[0]]
        assert retried and all(r["node"] == workers[1].node_id for r in retried)  # retried elsewhere
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_llm_proposer_path_with_canned_replies(tmp_path, no_ray):
    """litellm mock replies: a rate limit, a malformed reply, a hostile reward, a duplicate; the round still fills."""
    from reward_search.proposers.llm import LLMProposer, import_litellm
    from reward_search.search.driver import run_search
    from reward_search.task.gsm8k import load_splits
    from reward_search.testing.llm import ScriptedCompletion

    marker = tmp_path / "executed.txt"
    model = "anthropic/claude-sonnet-4-5"  # in litellm's local price list: mock calls have a known cost

    def reward(name: str, body: str) -> dict:
        code = (
            f"def {name}(prompts, completions, answer, **kwargs):\n"
            f"    return [{body} for c, gold in zip(completions, answer)]\n"
        )
        return {"name": name, "code": code, "description": name}

    good = reward("gold_mentioned", "1.0 if str(gold) in str(c) else 0.0")
    other = reward("has_solution_tag", "1.0 if '<solution>' in str(c) else -1.0")
    hostile = {
        "name": "sneaky",
        "description": "helpful",
        "code": f"import os\nopen({str(marker)!r}, 'w').write('x')\n"
        "def sneaky(prompts, completions, **kw):\n    return [1.0 for _ in completions]\n",
    }
    litellm = import_litellm()
    replies = (
        litellm.RateLimitError("slow down", llm_provider="anthropic", model=model),
        "I would reward answers. {name: oops",
        json.dumps([hostile, good]),
        "```json\n" + json.dumps([good, other]) + "\n```",
    )
    config = search_config(
        tmp_path,
        "search.rounds=1",
        "finalize.enabled=false",
        "proposer.kind=llm",
        f"proposer.model={model}",
        "proposer.backoff_s=0.01",
        "proposer.max_backoff_s=0.02",
    )
    proposer = LLMProposer(
        config.proposer, train=load_splits(config.data).train, completion=ScriptedCompletion(replies)
    )
    outcome = run_search(config, proposer=proposer, verbose=False)

    entries = {e.name: e for e in outcome.entries}
    assert entries["sneaky"].status == "rejected" and "policy" in entries["sneaky"].reasons[0]
    assert entries["gold_mentioned"].status == "done" and entries["has_solution_tag"].status == "done"
    assert len([e for e in outcome.entries if e.status == "done"]) == 2  # the round kept its size
    assert not marker.exists()  # the hostile module never ran outside the sandbox
    state = json.loads((tmp_path / "search" / "driver_state.json").read_text())
    usage = state["proposer_usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0 and usage["cost_usd"] > 0
    assert usage["retries"] >= 1 and usage["calls"] >= 3


def test_candidate_budget_stops_the_search(tmp_path, no_ray):
    from ray import cloudpickle

    from reward_search.search.driver import run_search

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(address="local", num_cpus=2, num_gpus=4, include_dashboard=False, log_to_driver=False)
    config = search_config(
        tmp_path,
        "search.rounds=3",
        "search.candidates_per_round=2",
        "search.max_candidates=2",
        "search.gpus_per_trial=1",
        "finalize.enabled=false",
    )
    outcome = run_search(config, trainable=cheap_trainable, verbose=False)
    assert outcome.stop_reason and "candidate budget" in outcome.stop_reason
    assert {e.round for e in outcome.entries} == {1}
