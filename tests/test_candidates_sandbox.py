"""The sandbox's process boundary: hardening facts, deadlines, replacement, isolation, JSON-only results."""

from __future__ import annotations

import json
import os
import random
import threading
import time

import pytest

from reward_search.candidates.sandbox import (
    BACKENDS,
    CallResult,
    CandidateRunner,
    ProcessBackend,
    SandboxError,
    Worker,
    decode_scores,
    make_backend,
    register_backend,
    scrubbed_env,
)
from reward_search.candidates.settings import PolicyConfig, SandboxConfig

FAST = SandboxConfig(call_timeout_s=1.0, load_timeout_s=3.0)
LENGTHS = "def reward(prompts, completions, **kw):\n    return [float(len(c)) for c in completions]\n"
SLEEPER = (
    "def reward(prompts, completions, **kw):\n"
    "    if completions[0] == 'hang':\n"
    "        while True:\n"
    "            pass\n"
    "    return [1.0 for _ in completions]\n"
)


@pytest.fixture
def runner():
    with CandidateRunner(FAST) as r:
        yield r


def _worker(runner: CandidateRunner):
    (slot,) = runner._slots.values()
    return slot.worker


def test_worker_is_hardened(runner):
    assert runner.load(LENGTHS, "reward").ok
    facts = _worker(runner).facts
    assert facts["rlimits"] is True
    assert facts["no_new_privs"] is True
    assert facts["seccomp"] is True, facts  # pyseccomp is a dependency and libseccomp2 is in every Debian base
    assert facts["audit_hook"] is True
    if os.geteuid() == 0:
        assert FAST.uid_base <= facts["uid"] < FAST.uid_base + FAST.uid_span
        # documented: namespaces where the platform allows them; as root in this container they do
        assert facts["netns"] and facts["pidns"] and facts["mountns"] and facts["ipcns"] and facts["fs_hidden"]
        assert facts["pid"] == 2  # in a PID namespace of its own, under a bare init (pid 1)


def test_layers_can_be_switched_off_and_are_reported():
    config = SandboxConfig(call_timeout_s=1.0, seccomp=False, namespaces=False, python_guards=False)
    with CandidateRunner(config) as r:
        assert r.call(LENGTHS, "reward", ["p"], ["abc"]).scores == [3.0]
        facts = r.facts(LENGTHS, "reward")
    assert facts["seccomp"] is False and facts["seccomp_reason"] == "seccomp off"
    assert facts["pidns"] is False and facts["audit_hook"] is False and facts["pid"] > 2


def test_require_seccomp_refuses_a_worker_without_it():
    config = SandboxConfig(call_timeout_s=1.0, seccomp=False, require_seccomp=True)
    with CandidateRunner(config) as r:
        result = r.load(LENGTHS, "reward")
    assert not result.ok and "seccomp layer required" in result.error


def test_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-env")
    env = scrubbed_env()
    assert "OPENAI_API_KEY" not in env and set(env) <= {"PATH", "LC_ALL", "PYTHONHASHSEED"}


def test_scores_and_shapes(runner):
    result = runner.call(LENGTHS, "reward", ["p", "p"], ["ab", ""])
    assert result.ok and result.scores == [2.0, 0.0]
    assert result.wall_ms >= result.elapsed_ms >= 0


def test_deadline_kills_and_replaces_the_worker(runner):
    assert runner.call(SLEEPER, "reward", ["p"], ["ok"]).ok
    first_pid = _worker(runner).process.pid
    start = time.monotonic()
    result = runner.call(SLEEPER, "reward", ["p"], ["hang"])
    assert not result.ok and result.kind == "timeout"
    assert time.monotonic() - start < 3
    again = runner.call(SLEEPER, "reward", ["p"], ["ok"])  # a fresh worker, automatically
    assert again.ok
    assert _worker(runner).process.pid != first_pid


def test_calls_from_non_main_threads(runner):
    results = []

    def work(i):
        results.append(runner.call(LENGTHS, "reward", ["p"], ["x" * i]).scores)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert sorted(r[0] for r in results) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_state_is_isolated_between_candidates(runner):
    patcher = (
        "import re\n"
        "re.findall = lambda *a, **k: ['patched']\n"
        "def reward(prompts, completions, **kw):\n"
        "    return [float(len(re.findall('x', c))) for c in completions]\n"
    )
    reader = (
        "import re\n"
        "def reward(prompts, completions, **kw):\n"
        "    return [float(len(re.findall('x', c))) for c in completions]\n"
    )
    assert runner.call(patcher, "reward", ["p"], ["xxx"]).scores == [1.0]  # it patched only itself
    assert runner.call(reader, "reward", ["p"], ["xxx"]).scores == [3.0]


def test_load_errors_and_exceptions_are_results(runner):
    broken = "raise ValueError('boom')\ndef reward(completions, **kw):\n    return []\n"
    result = runner.load(broken, "reward")
    assert not result.ok and "ValueError: boom (line 1)" in result.error
    missing = runner.load(LENGTHS, "nope")
    assert not missing.ok and "not a function" in missing.error


def test_killed_worker_is_a_crash_then_replaced(runner):
    assert runner.call(LENGTHS, "reward", ["p"], ["a"]).ok
    _worker(runner).process.kill()
    _worker(runner).process.wait()
    result = runner.call(LENGTHS, "reward", ["p"], ["abc"])
    assert result.ok and result.scores == [3.0]  # dead between calls: replaced before the call


def test_candidate_signature_is_adapted(runner):
    narrow = "def reward(completions):\n    return [1.0 for _ in completions]\n"
    result = runner.call(narrow, "reward", ["p"], ["a"], answer=["1"])
    assert result.ok and result.scores == [1.0]


@pytest.mark.slow
def test_cpu_limit_recycles_worker(runner):
    # Each call burns about 0.25 s of CPU here (the kernel's account of the candidate's own process, which is what
    # RLIMIT_CPU counts): the worker is recycled once it has used half its 2 s, so no call meets RLIMIT_CPU unless
    # one call alone took over 1 s (4x slower than this machine); 10 calls (2.5 s) need a recycle.
    config = SandboxConfig(call_timeout_s=10.0, cpu_seconds=2)
    burner = (
        "def reward(prompts, completions, **kw):\n"
        "    total = 0\n"
        "    for i in range(10_000_000):\n"
        "        total += i\n"
        "    return [1.0 for _ in completions]\n"
    )
    with CandidateRunner(config) as r:
        outcomes = [r.call(burner, "reward", ["p"], ["a"]) for _ in range(10)]
        assert all(o.ok for o in outcomes), [o.error for o in outcomes]
        assert r.starts >= 2


def test_backend_registry():
    assert BACKENDS["process"] is ProcessBackend
    assert isinstance(make_backend("process"), ProcessBackend)
    with pytest.raises(SandboxError, match="unknown sandbox backend"):
        make_backend("nsjail")

    @register_backend
    class Wrapped(ProcessBackend):
        name = "test-wrapped"

    try:
        with CandidateRunner(SandboxConfig(backend="test-wrapped")) as r:
            assert r.call(LENGTHS, "reward", ["p"], ["ab"]).scores == [2.0]
    finally:
        BACKENDS.pop("test-wrapped")


def test_close_reaps_workers():
    r = CandidateRunner(FAST)
    assert r.load(LENGTHS, "reward").ok
    process = _worker(r).process
    r.close()
    assert process.poll() is not None


# Every Python layer off: the candidate imports os and signal for real, so only the OS layers stand in its way.
ATTACKER = (
    "import os, signal\n"
    "def reward(prompts, completions, **kw):\n"
    "    pid = int(completions[0])\n"
    "    attempts = [\n"
    "        lambda: os.kill(pid, 0),\n"
    "        lambda: os.kill(pid, signal.SIGKILL),\n"
    "        lambda: signal.pidfd_send_signal(os.pidfd_open(pid), signal.SIGKILL),\n"
    "        lambda: os.listdir('/proc'),\n"
    "    ]\n"
    "    out = []\n"
    "    for attempt in attempts:\n"
    "        try:\n"
    "            attempt()\n"
    "            out.append(0.0)\n"
    "        except OSError as exc:\n"
    "            out.append(float(exc.errno or -1))\n"
    "    return out\n"
)


@pytest.mark.parametrize(
    "layers",
    [
        {},  # everything on
        {"seccomp": False},  # namespaces (and uids) alone
        {"seccomp": False, "namespaces": False},  # distinct uids alone
        {"namespaces": False, "distinct_uids": False},  # seccomp alone (same uid for both)
    ],
    ids=["all", "namespaces", "uids", "seccomp"],
)
def test_two_workers_cannot_see_or_signal_each_other(layers):
    if os.geteuid() != 0 and layers.get("seccomp", True) is False:
        pytest.skip("namespaces and distinct uids need root here; seccomp alone is tested without it")
    config = SandboxConfig(call_timeout_s=2.0, python_guards=False, **layers)
    with CandidateRunner(config) as victim, CandidateRunner(config) as attacker:
        assert victim.call(LENGTHS, "reward", ["p"], ["ab"]).scores == [2.0]
        target = _worker(victim).process.pid
        result = attacker.call(ATTACKER, "reward", ["p"] * 4, [str(target)] * 4)
        assert result.ok, result.error
        signals, listing = result.scores[:3], result.scores[3]
        assert all(code > 0 for code in signals), result.scores  # every signal attempt failed with an errno
        if config.namespaces or config.seccomp:  # uids alone stop signals but hide nothing
            assert listing > 0, result.scores  # /proc (other processes) is not visible
        assert victim.call(LENGTHS, "reward", ["p"], ["abc"]).scores == [3.0]
        assert _worker(victim).process.pid == target  # the same worker, alive
        if os.geteuid() == 0 and config.distinct_uids:
            assert attacker.facts(ATTACKER, "reward")["uid"] != _worker(victim).facts["uid"]


def _fuzz_replies(seed: int) -> list[bytes]:
    """Replies a hostile worker could write: garbage, bombs, wrong types in every field, forged numbers."""
    rng = random.Random(seed)
    values: list[object] = [None, True, 1, -1, 0.5, 1e308, -1e308, 10**400, 2**63, "x", [], {}, [[1]], {"a": 1}]
    lines = [
        b"",
        b"\xff\xfe\x00",
        b"{",
        b"[]",
        b"null",
        b"1e999",
        b"NaN",
        b'{"id": 1, "ok": true, "scores": [NaN]}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"id": 1, "ok": true, "scores": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b'{"id": 1, "ok": true, "scores": [' + b"9" * 5000 + b"]}",
        b'{"id": 1, "ok": true, "scores": [1e400]}',
        b'{"id": 1.0, "ok": true, "scores": [1]}',
        b'{"id": true, "ok": true, "scores": [1]}',
    ]
    for _ in range(60):
        reply = {"id": 1, "ok": True, "scores": [1.0], "elapsed_ms": 1.0, "cpu_s": 0.1}
        for key in rng.sample(sorted(reply), k=rng.randint(1, 3)):
            reply[key] = rng.choice(values) if rng.random() < 0.8 else [rng.choice(values)]
        lines.append(json.dumps(reply, default=str).encode())
    return lines


def test_parent_survives_fuzzed_replies():
    """The parent reads each forged line from a real pipe; it answers with a result and never raises."""
    config = SandboxConfig(call_timeout_s=0.5)
    outcomes = set()
    for line in _fuzz_replies(seed=12):
        worker = Worker(config, PolicyConfig(), ProcessBackend())
        req_r, worker._req = os.pipe()
        worker._rep, rep_w = os.pipe()

        def forge(fd: int = rep_w, data: bytes = line + b"\n") -> None:
            with os.fdopen(fd, "wb") as out:  # then the pipe closes, as a crashing worker's would
                try:
                    out.write(data)
                except BrokenPipeError:
                    pass  # the parent stopped reading (reply over its size limit)

        writer = threading.Thread(target=forge)
        writer.start()
        with os.fdopen(req_r, "rb"):
            result = worker.call({"prompts": ["p"], "completions": ["c"]}, 1)
        writer.join(timeout=10)
        for fd in (worker._req, worker._rep):
            try:
                os.close(fd)
            except OSError:
                pass
        assert isinstance(result, CallResult)
        if result.ok:  # only a well-formed reply with one finite, bounded number gets through
            (score,) = result.scores
            assert score is None or (type(score) is float and abs(score) <= config.score_cap)
        outcomes.add(result.kind)
    assert outcomes >= {"ok", "error", "crash"}


def test_score_cap_and_decoding():
    assert decode_scores([1, 2.5, None], 3, 1e6) == ([1.0, 2.5, None], None)
    for bad in ([10**400], [1e307], [True], ["1"], [[1]], (1,), [float("inf")]):
        scores, reason = decode_scores(bad, 1, 1e6)
        assert scores is None and reason
    assert decode_scores([1.0], 2, 1e6)[0] is None
    source = "def reward(completions, **kw):\n    return [10**400 for _ in completions]\n"
    with CandidateRunner(FAST) as r:
        result = r.call(source, "reward", ["p"], ["a"])
    assert not result.ok and "too large" in result.error
