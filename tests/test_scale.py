"""Many searches on one cluster: run ids, the run-directory lease, steady proposing, fair shares, rescaling resume.

Drivers and Tune are real (local Ray, logical GPUs); trials only sleep, so the tests time scheduling, not training.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import ray

from reward_search.config import load_config
from reward_search.errors import UserError
from reward_search.search.leaderboard import load_entries
from reward_search.search.lease import LEASE_FILE, Holder, RunLease

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "experiments" / "smoke.yaml"


@pytest.fixture
def no_ray():
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    if ray.is_initialized():
        ray.shutdown()
    yield
    if ray.is_initialized():
        ray.shutdown()


def _start_ray(**options) -> None:
    """ray.init, retried: Ray 2.60 gives a raylet 30 s to register, which a loaded 2-core box can exceed."""
    for attempt in range(3):
        try:
            ray.init(address="local", include_dashboard=False, log_to_driver=False, **options)
            return
        except Exception as exc:  # Ray raises a bare Exception for this timeout
            ray.shutdown()
            if "timed out during startup" not in str(exc) or attempt == 2:
                raise


def sleeping_trainable(params: dict) -> None:
    """A trial that waits (up to 60 s) until as many trials run as the search may run at once, then sleeps 2 s.

    Waiting for its peers makes concurrency visible however slowly a loaded machine starts Ray workers: trials can
    only meet when the scheduler lets that many run at once. Logs its span (candidate, round, start, end).
    """
    from ray import tune

    folder = Path(params["config"]["run"]["storage_path"])
    search = params["config"]["search"]
    want = search["max_concurrent_trials"] or 4  # the tests' logical GPUs
    start = time.time()
    with (folder / "starts.jsonl").open("a") as handle:
        handle.write(json.dumps({"candidate": params["candidate_id"]}) + "\n")

    def running() -> int:
        started = len((folder / "starts.jsonl").read_text().splitlines())
        ended = len((folder / "spans.jsonl").read_text().splitlines()) if (folder / "spans.jsonl").is_file() else 0
        return started - ended

    while running() < want and time.time() - start < 60.0:
        time.sleep(0.2)
    time.sleep(2.0)
    record = {"candidate": params["candidate_id"], "round": params["round"], "start": start, "end": time.time()}
    with (folder / "spans.jsonl").open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    tune.report({"final": True, "status": "done", "selection_accuracy": 0.25, "selection_correct": 1, "selection_n": 4})


def _config(tmp_path: Path, *overrides: str):
    return load_config(
        SMOKE,
        [
            f"run.storage_path={tmp_path}",
            "run.name=paper",
            "search.gpus_per_trial=1",
            "search.cpus_per_trial=0",
            "search.dashboard=false",
            "finalize.enabled=false",
            *overrides,
        ],
    )


def _spans(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "spans.jsonl").read_text().splitlines()]


def _max_overlap(spans: list[dict]) -> int:
    events = sorted([(s["start"], 1) for s in spans] + [(s["end"], -1) for s in spans], key=lambda e: (e[0], e[1]))
    running = best = 0
    for _, step in events:
        running += step
        best = max(best, running)
    return best


def _idle_with_work(spans: list[dict], ready: dict[str, float], slots: int, grace: float = 15.0) -> float:
    """Slot-seconds during which a slot was free while a candidate had been ready for over `grace` seconds."""
    points = sorted({s["start"] for s in spans} | {s["end"] for s in spans} | {t + grace for t in ready.values()})
    total = 0.0
    for a, b in itertools.pairwise(points):
        mid = (a + b) / 2
        running = sum(1 for s in spans if s["start"] <= mid < s["end"])
        waiting = sum(1 for s in spans if ready[s["candidate"]] + grace <= mid < s["start"])
        total += (b - a) * min(slots - running, waiting)
    return total


# ------------------------------------------------------------------------------------------------- lease


def test_a_second_driver_is_refused_and_a_stale_lease_is_taken_over(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        # A live holder (another process on this host): refused with one line naming it.
        other = RunLease(run_dir, "paper-20261128t000000-aaaaaa")
        me = Holder.me("paper-20261128t000000-aaaaaa")
        start = Path(f"/proc/{holder.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        live = {**me.__dict__, "pid": holder.pid, "pid_start": start}
        run_dir.mkdir()
        (run_dir / LEASE_FILE).write_text(json.dumps(live))
        with pytest.raises(UserError) as refused:
            other.acquire()
        message = str(refused.value)
        assert "\n" not in message and f"pid {holder.pid} on {socket.gethostname()}" in message
        assert "paper-20261128t000000-aaaaaa" in message
    finally:
        holder.kill()
        holder.wait()
    # The holder is gone: its lease is stale and is taken over.
    with RunLease(run_dir, "paper-20261128t000000-bbbbbb") as lease:
        assert lease.took_over is not None and lease.took_over.pid == holder.pid
        assert json.loads((run_dir / LEASE_FILE).read_text())["run_id"] == "paper-20261128t000000-bbbbbb"
    assert not (run_dir / LEASE_FILE).exists()  # released on exit
    # Another host: alive while its heartbeat is fresh, stale after the ttl.
    remote = Holder("t", "x", "elsewhere", 1, None, "job-1", time.time() - 500, time.time() - 5)
    assert remote.alive(ttl=90) and not remote.alive(ttl=90, now=time.time() + 120)


@pytest.mark.slow
def test_cli_refuses_a_second_driver_with_exit_2(tmp_path: Path) -> None:
    run_dir = tmp_path / "paper"
    run_dir.mkdir()
    config = _config(tmp_path, "search.gpus_per_trial=0", "search.cpus_per_trial=1")
    from reward_search.config import dump_config

    (run_dir / "config.yaml").write_text(dump_config(config))
    (run_dir / "manifest.json").write_text(json.dumps({"run_id": "paper-20261128t000000-cccccc"}))
    with RunLease(run_dir, "paper-20261128t000000-cccccc"):  # this test process is the live driver
        done = subprocess.run(
            [sys.executable, "-m", "reward_search.cli", "resume", str(run_dir)],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "RAY_ADDRESS": ""},
        )
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "another driver is running this run directory" in lines[0]
    assert f"pid {os.getpid()}" in lines[0] and "Traceback" not in done.stderr


# ------------------------------------------------------------------------------------------------- steady mode


@pytest.mark.slow
def test_steady_mode_keeps_every_slot_busy_and_its_feedback_holds_what_it_claims(tmp_path: Path, no_ray) -> None:
    from reward_search.search.driver import FEEDBACK_LOG, run_search

    _start_ray(num_cpus=2, num_gpus=4)
    config = _config(
        tmp_path, "search.mode=steady", "search.rounds=4", "search.candidates_per_round=4", "search.max_staleness=2"
    )
    outcome = run_search(config, address="auto", trainable=sleeping_trainable, verbose=False)
    spans = sorted(_spans(tmp_path), key=lambda s: s["start"])
    accepted = [e for e in outcome.entries if e.status != "rejected"]
    assert len(spans) == len(accepted) == 16 and all(e.status == "done" for e in accepted)
    assert _max_overlap(spans) == 4
    # Busy: a slot never idled while an accepted candidate waited (beyond Tune's start latency). Candidates become
    # available when written (their file's mtime); proposing speed is the proposer's, not the scheduler's, business.
    ready = {
        e.candidate_id: (outcome.run_dir / "candidates" / f"{e.candidate_id}.json").stat().st_mtime for e in accepted
    }
    # Grace: the start latency Ray and Tune showed for the first wave (free slots, ready candidates) in this run.
    grace = max(15.0, *(s["start"] - ready[s["candidate"]] for s in spans[:4]))
    idle_with_work = _idle_with_work(spans, ready, slots=4, grace=grace)
    assert idle_with_work < 0.25 * 4 * (spans[-1]["end"] - spans[0]["start"]), idle_with_work
    # Batches follow the free slots: none larger than the slots plus the lookahead, and the budget exactly spent.
    by_round = {e.candidate_id: e.round for e in accepted}
    lines = [json.loads(line) for line in (outcome.run_dir / FEEDBACK_LOG).read_text().splitlines()]
    sizes = [sum(1 for r in by_round.values() if r == line["round"]) for line in lines]
    assert all(0 < n <= 4 + 2 for n in sizes) and sum(sizes) == 16, sizes
    # Feedback: each batch lists the results it included; they had all finished before it was proposed, every
    # candidate's `conditioned_on` is its batch's count, and later batches saw results.
    by_id = {s["candidate"]: s for s in spans}
    assert [line["mode"] for line in lines] == ["steady"] * len(lines)
    for line in lines:
        assert all(by_id[cid]["end"] <= line["time"] for cid in line["results"])
        batch = [e for e in accepted if e.round == line["round"]]
        assert all(e.conditioned_on == len(line["results"]) for e in batch)
    assert max(len(line["results"]) for line in lines) >= 8
    assert len(lines) > 4  # more batches than barrier rounds: proposing follows the free slots


# ------------------------------------------------------------------------------------------------- rescaling


@pytest.mark.slow
def test_resume_with_more_slots_runs_more_trials_at_once_and_retrains_nothing(tmp_path: Path, no_ray) -> None:
    from reward_search.search.driver import run_search
    from reward_search.search.sharing import resume_config

    _start_ray(num_cpus=2, num_gpus=4)
    config = _config(tmp_path, "search.rounds=1", "search.candidates_per_round=3", "search.max_concurrent_trials=1")
    first = run_search(config, address="auto", trainable=sleeping_trainable, verbose=False)
    assert _max_overlap(_spans(tmp_path)) == 1
    done_first = {e.candidate_id for e in first.entries if e.status == "done"}
    assert len(done_first) == 3
    (tmp_path / "spans.jsonl").rename(tmp_path / "spans-first.jsonl")
    (tmp_path / "starts.jsonl").rename(tmp_path / "starts-first.jsonl")

    with pytest.raises(UserError, match=r"resume --set training\.steps: changes what a trial computes"):
        resume_config(first.run_dir, config, ["training.steps=3"])
    rescaled = resume_config(
        first.run_dir, load_config(first.run_dir / "config.yaml"), ["search.max_concurrent_trials=3", "search.rounds=2"]
    )
    assert rescaled.search.max_concurrent_trials == 3
    assert load_config(first.run_dir / "config.yaml") == rescaled  # written back for the next resume
    second = run_search(
        rescaled, first.run_dir, address="auto", trainable=sleeping_trainable, resume=True, verbose=False
    )
    spans = _spans(tmp_path)
    assert len(spans) == 3 and not {s["candidate"] for s in spans} & done_first  # nothing retrained
    assert _max_overlap(spans) == 3
    assert len([e for e in second.entries if e.status == "done"]) == 6
    manifest = json.loads((first.run_dir / "manifest.json").read_text())
    assert manifest["resumes"][-1]["set"] == ["search.max_concurrent_trials=3", "search.rounds=2"]


# ------------------------------------------------------------------------------------------------- two searches


_DRIVER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from reward_search.config import load_config
    from reward_search.search.driver import run_search

    def trainable(params):
        from ray import tune
        time.sleep(4.0)
        tune.report({"final": True, "status": "done", "selection_accuracy": 0.5, "selection_correct": 2,
                     "selection_n": 4})

    config = load_config(sys.argv[1], [f"run.storage_path={sys.argv[2]}", "run.name=paper", "search.rounds=1",
                                       "search.candidates_per_round=3", "search.cpus_per_trial=1",
                                       "search.gpus_per_trial=0", "search.dashboard=false",
                                       "finalize.enabled=false", "search.max_concurrent_trials=1"])
    out = run_search(config, address=sys.argv[3], trainable=trainable, verbose=False)
    print(json.dumps({"run_dir": str(out.run_dir), "n": len(out.entries)}), flush=True)
    """
)


def _start_head(make: type) -> object:
    """A LocalHead, retried: Ray 2.60 gives a raylet 30 s to register, which a loaded 2-core box can exceed."""
    for attempt in range(3):
        head = make(num_cpus=2)
        try:
            return head.start()
        except UserError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@pytest.mark.slow
def test_two_searches_named_alike_keep_separate_actors_directories_and_metrics(tmp_path: Path) -> None:
    from reward_search.testing.local_head import LocalHead, scrape

    head = _start_head(LocalHead)
    try:
        drivers = [
            subprocess.Popen(
                [sys.executable, "-c", _DRIVER, str(SMOKE), str(tmp_path / user), head.gcs_address],
                env=head.env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for user in ("alice", "bob")
        ]
        listed: dict[str, str] = {}
        tags: set[str] = set()
        deadline = time.time() + 400
        lister = (
            "import json\nfrom reward_search.search.live import live_searches\n"
            f"print(json.dumps([[r['run_id'], r['run_dir']] for r in live_searches({head.gcs_address!r})]))\n"
        )
        while any(d.poll() is None for d in drivers) and time.time() < deadline:
            done = subprocess.run(
                [sys.executable, "-c", lister], env=head.env(), capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, done.stderr[-2000:]
            listed.update(dict(json.loads(done.stdout.strip().splitlines()[-1])))
            text = scrape(head.metrics_url)
            tags |= set(re.findall(r'ray_reward_search_\w+\{[^}]*run="([^"]+)"[^}]*run_name="paper"', text))
            tags |= set(re.findall(r'ray_reward_search_\w+\{[^}]*run_name="paper"[^}]*run="([^"]+)"', text))
            time.sleep(1.0)
        outputs = [d.communicate(timeout=60) for d in drivers]
        assert all(d.returncode == 0 for d in drivers), [err[-2000:] for _, err in outputs]
    finally:
        head.stop()
    run_ids = {user: json.loads((tmp_path / user / "paper" / "manifest.json").read_text())["run_id"] for user in
               ("alice", "bob")}  # fmt: skip
    assert run_ids["alice"] != run_ids["bob"] and all(r.startswith("paper-") for r in run_ids.values())
    # Both were listed as live searches, each with its own run directory (its own leaderboard actor).
    assert listed == {run_ids[u]: str(tmp_path / u / "paper") for u in ("alice", "bob")}
    # Each leaderboard holds only its own candidates; each search's metrics carry its own run id.
    for user in ("alice", "bob"):
        done = [e for e in load_entries(tmp_path / user / "paper") if e.status == "done"]
        assert len(done) == 3
    assert set(run_ids.values()) <= tags
