"""The sandbox's process boundary: hardening facts, deadlines, replacement, isolation, JSON-only results."""

from __future__ import annotations

import os
import threading
import time

import pytest

from reward_search.candidates.sandbox import (
    BACKENDS,
    CandidateRunner,
    ProcessBackend,
    SandboxError,
    make_backend,
    register_backend,
    scrubbed_env,
)
from reward_search.candidates.settings import SandboxConfig

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
        assert facts["pid"] == 1  # pid 1 of its own PID namespace


def test_layers_can_be_switched_off_and_are_reported():
    config = SandboxConfig(call_timeout_s=1.0, seccomp=False, namespaces=False, python_guards=False)
    with CandidateRunner(config) as r:
        assert r.call(LENGTHS, "reward", ["p"], ["abc"]).scores == [3.0]
        facts = r.facts(LENGTHS, "reward")
    assert facts["seccomp"] is False and facts["seccomp_reason"] == "seccomp off"
    assert facts["pidns"] is False and facts["audit_hook"] is False and facts["pid"] != 1


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


def test_cpu_limit_recycles_worker(runner):
    config = SandboxConfig(call_timeout_s=5.0, cpu_seconds=1)
    burner = (
        "def reward(prompts, completions, **kw):\n"
        "    total = 0\n"
        "    for i in range(8_000_000):\n"
        "        total += i\n"
        "    return [1.0 for _ in completions]\n"
    )
    with CandidateRunner(config) as r:
        outcomes = [r.call(burner, "reward", ["p"], ["a"]) for _ in range(5)]
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
