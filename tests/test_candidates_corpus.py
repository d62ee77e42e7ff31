"""The hostile and benign corpora, end to end: policy on, policy bypassed, and checks that nothing happened."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
import tempfile
import types
from pathlib import Path

import pytest

from reward_search.candidates.candidate import find_entry
from reward_search.candidates.probes import run_probes
from reward_search.candidates.sandbox import CandidateRunner
from reward_search.candidates.settings import CandidatesConfig, SandboxConfig
from reward_search.candidates.validation import validate_source

CORPUS = Path(__file__).parent / "corpus"
HOSTILE = sorted((CORPUS / "hostile").glob("*.py"))
BENIGN = sorted((CORPUS / "benign").glob("*.py"))
SECRET = "sk-canary-7f3a9d2e41b8"
TEST_SPLIT = Path(__file__).parent.parent / "reward_search" / "task" / "data" / "gsm8k_sample" / "test.jsonl"
CONTAINED = {"mutate_inputs"}  # harmless to us once contained: may be accepted
# They behave while validated; training stops them (spot re-probes, per-call budget: test_candidates_rewards).
CAUGHT_IN_TRAINING = {"evasion_time_bomb", "evasion_slow_after_validation"}
# Rejected by the policy; with it bypassed they only change their own worker (the session test checks that).
CONTAINED_WHEN_BYPASSED = CONTAINED | CAUGHT_IN_TRAINING | {"monkeypatch_re", "monkeypatch_math_json"}
CONFIG = CandidatesConfig(sandbox=SandboxConfig(call_timeout_s=2.0, load_timeout_s=3.0))
# With every Python layer off, these escapes fail silently inside the OS boundary (os.system cannot fork) and
# then score like an ordinary reward: contained (nothing happened, checked below), not necessarily rejected.
SILENT_WHEN_BARE = {"dunder_subclasses_system"}
# No Python-level layer at all: no policy (run_probes directly), no audit hook, real builtins and imports.
BARE = SandboxConfig(call_timeout_s=2.0, load_timeout_s=3.0, python_guards=False)
# The unprivileged pod of SANDBOX.md's table, emulated: no namespaces, one uid for every worker (here nobody, as
# its same-uid victim), and no Python layer either: seccomp, rlimits and the parent's checks alone.
POD = SandboxConfig(call_timeout_s=2.0, load_timeout_s=3.0, python_guards=False, namespaces=False, distinct_uids=False)
# The victims run only the trusted VICTIM_SOURCE: generous deadlines, so a starved shared box cannot time one out
# (and replace it, which would read as a victim that was killed).
VICTIM = SandboxConfig(call_timeout_s=30.0, load_timeout_s=30.0)
POD_VICTIM = SandboxConfig(call_timeout_s=30.0, load_timeout_s=30.0, namespaces=False, distinct_uids=False)
SAMPLE_ROWS = (
    ("What is 2+3?", "<thinking>2+3=5</thinking>\n<solution>5</solution>", "5"),
    ("What is 10*4?", "<thinking>10*4=40</thinking><solution>41</solution>", "40"),
    ("Half of 18?", "Half of 18 is 9. So the answer is 9.", "9"),
    ("What is 7-2?", "", "5"),
    ("1,000+234?", "<thinking>add</thinking><solution>1,234</solution>", "1234"),
)


@pytest.fixture(scope="module")
def secret_env():
    previous = os.environ.get("OPENAI_API_KEY")
    os.environ["OPENAI_API_KEY"] = SECRET
    yield SECRET
    if previous is None:
        os.environ.pop("OPENAI_API_KEY", None)
    else:
        os.environ["OPENAI_API_KEY"] = previous


@pytest.fixture(scope="module")
def canary_dir():
    """A world-writable directory: only the sandbox, not file permissions, may stop writes into it."""
    path = Path(tempfile.mkdtemp(prefix="reward-canary-"))
    path.chmod(0o777)
    yield path
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


@pytest.fixture(scope="module")
def listener():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


@pytest.fixture(scope="module")
def unix_listener():
    """A filesystem unix socket anyone may connect to: only the sandbox, not permissions, may stop a connection."""
    folder = Path(tempfile.mkdtemp(prefix="reward-unix-"))
    folder.chmod(0o777)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(folder / "host.sock"))
    (folder / "host.sock").chmod(0o777)
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()
    (folder / "host.sock").unlink()
    folder.rmdir()


@pytest.fixture(scope="module")
def victim():
    """Another job's worker: hostile candidates try to signal it by its host pid."""
    with CandidateRunner(VICTIM, CONFIG.policy) as runner:
        assert runner.call(VICTIM_SOURCE, "reward", ["p"], ["abc"]).scores == [3.0]
        (slot,) = runner._slots.values()
        yield runner, slot.worker.process.pid


@pytest.fixture(scope="module")
def pod_victim():
    """A worker of the same uid as the pod's attackers (nobody as root; this uid otherwise)."""
    with CandidateRunner(POD_VICTIM, CONFIG.policy) as runner:
        assert runner.call(VICTIM_SOURCE, "reward", ["p"], ["abc"]).scores == [3.0]
        (slot,) = runner._slots.values()
        yield runner, slot.worker.process.pid


VICTIM_SOURCE = "def reward(prompts, completions, **kw):\n    return [float(len(c)) for c in completions]\n"


@pytest.fixture(scope="module")
def session(secret_env):
    with CandidateRunner(CONFIG.sandbox, CONFIG.policy) as runner:
        yield runner


@pytest.fixture(scope="module")
def bare_session(secret_env):
    with CandidateRunner(BARE, CONFIG.policy) as runner:
        yield runner


@pytest.fixture(scope="module")
def pod_session(secret_env):
    with CandidateRunner(POD, CONFIG.policy) as runner:
        yield runner


@pytest.fixture(scope="module")
def targets(canary_dir, listener, unix_listener, victim):
    return {
        "/tmp/reward_search_canary": str(canary_dir),
        "47653": str(listener.getsockname()[1]),
        "/tmp/reward_search_unix.sock": unix_listener.getsockname(),
        "/tmp/reward_search_test_split.jsonl": str(TEST_SPLIT),
        "999999999": str(victim[1]),
    }


def _hostile_source(path: Path, canary: Path, port: int, targets: dict[str, str] | None = None) -> str:
    text = path.read_text()
    text = text.replace("/tmp/reward_search_canary", str(canary)).replace("47653", str(port))
    for placeholder, value in (targets or {}).items():
        text = text.replace(placeholder, value)
    return text


def _assert_nothing_happened(outputs: list[str], canary: Path, listener: socket.socket, unix=None, victim=None) -> None:
    assert list(canary.iterdir()) == [], "a candidate wrote into the canary directory"
    with pytest.raises(BlockingIOError):
        listener.accept()  # no connection reached the loopback listener
    if unix is not None:
        with pytest.raises(BlockingIOError):
            unix.accept()  # nor the host's filesystem unix socket
    if victim is not None:
        runner, pid = victim
        assert runner.call(VICTIM_SOURCE, "reward", ["p"], ["abcd"]).scores == [4.0]
        (slot,) = runner._slots.values()
        assert slot.worker.process.pid == pid  # the same worker, never signalled
    for text in outputs:
        assert SECRET not in text
    assert os.environ["OPENAI_API_KEY"] == SECRET  # the parent is intact


def _benign_scores(runner: CandidateRunner) -> list[float | None]:
    source = (CORPUS / "benign" / "helper_functions_typed.py").read_text()
    prompts, completions, answers = (list(col) for col in zip(*SAMPLE_ROWS, strict=True))
    result = runner.call(source, find_entry(source), prompts, completions, answer=answers)
    assert result.ok, result.error
    return result.scores  # type: ignore[return-value]


def test_corpus_sizes():
    assert len(HOSTILE) >= 80
    assert len(BENIGN) >= 30


@pytest.mark.parametrize("path", HOSTILE, ids=[p.stem for p in HOSTILE])
def test_hostile_rejected_or_contained(
    path, session, bare_session, pod_session, targets, canary_dir, listener, unix_listener, victim, pod_victim
):
    source = _hostile_source(path, canary_dir, listener.getsockname()[1], targets)
    verdict = validate_source(source, session, CONFIG)
    outputs = [json.dumps(verdict.to_json())]
    if path.stem not in CONTAINED | CAUGHT_IN_TRAINING:
        assert not verdict.accepted, verdict.to_json()
    # The policy is a lint, not the boundary: run the same code with it bypassed, straight into the sandbox; then
    # with the audit hook and restricted builtins off too, so only the OS layers (seccomp, namespaces, uid) hold;
    # then as in an unprivileged pod (no namespaces, one uid), against a victim of that same uid.
    entry = find_entry(source)
    in_pod = _hostile_source(path, canary_dir, listener.getsockname()[1], {**targets, "999999999": str(pod_victim[1])})
    for runner, text, exempt in (
        (session, source, CONTAINED_WHEN_BYPASSED),
        (bare_session, source, CONTAINED_WHEN_BYPASSED | SILENT_WHEN_BARE),
        (pod_session, in_pod, CONTAINED_WHEN_BYPASSED | SILENT_WHEN_BARE),
    ):
        report = run_probes(runner, text, entry, CONFIG.probes)
        outputs.append(json.dumps(report))
        if path.stem not in exempt:
            assert not report["passed"], report
    _assert_nothing_happened(outputs, canary_dir, listener, unix_listener, victim)
    _assert_nothing_happened([], canary_dir, listener, None, pod_victim)


@pytest.mark.slow
def test_session_unharmed_by_hostile_corpus(session, canary_dir, listener):
    """After the whole corpus ran in this session, a benign reward scores exactly as in a fresh session."""
    for path in HOSTILE:
        source = _hostile_source(path, canary_dir, listener.getsockname()[1])
        session.load(source, find_entry(source))  # at least loaded, so module-level patches ran
    in_session = _benign_scores(session)
    with CandidateRunner(CONFIG.sandbox, CONFIG.policy) as fresh:
        alone = _benign_scores(fresh)
    assert in_session == alone
    assert in_session[0] == 1.0 and in_session[3] == -0.5
    _assert_nothing_happened([], canary_dir, listener)


@pytest.mark.parametrize(
    "name", ["dunder_subclasses_system", "write_run_dir", "typing_sys_reexport", "frame_traceback", "ctypes_libc"]
)
def test_escapes_blocked_even_as_root_without_privilege_drop(name, canary_dir, listener, secret_env):
    """With the uid drop off (root keeps file permissions), the audit hook and FSIZE=0 still stop writes."""
    config = SandboxConfig(call_timeout_s=2.0, load_timeout_s=3.0, drop_privileges=False)
    source = _hostile_source(CORPUS / "hostile" / f"{name}.py", canary_dir, listener.getsockname()[1])
    with CandidateRunner(config) as runner:
        result = runner.call(source, "reward", ["q"], ["<solution>1</solution>"], answer=["1"])
    assert not result.ok
    assert result.kind == "error"
    assert "not permitted" in (result.error or "") or "Error" in (result.error or "")
    _assert_nothing_happened([result.error or ""], canary_dir, listener)


def test_mutating_inputs_changes_nothing_outside(session):
    source = (CORPUS / "hostile" / "mutate_inputs.py").read_text()
    prompts = [[{"role": "user", "content": "q"}]]
    completions, answers = ["<solution>5</solution>"], ["5"]
    snapshot = json.dumps([prompts, completions, answers])
    for _ in range(2):
        result = session.call(source, "reward", prompts, completions, answer=answers)
        assert result.ok and result.scores == [1.0]  # the second call sees fresh copies too
    assert json.dumps([prompts, completions, answers]) == snapshot


def _in_process(source: str, entry: str, prompts, completions, answers):
    """Reference scores: the benign corpus is our own trusted code, so tests may run it directly."""
    module = types.ModuleType("reference_benign")  # registered, as in the worker: dataclasses look it up
    sys.modules[module.__name__] = module
    try:
        exec(compile(source, "<benign>", "exec", dont_inherit=True), module.__dict__)  # not this file's __future__
        scores = module.__dict__[entry](prompts=prompts, completions=completions, answer=answers)
    finally:
        del sys.modules[module.__name__]
    return [float(s) for s in scores]


@pytest.mark.parametrize("path", BENIGN, ids=[p.stem for p in BENIGN])
def test_benign_accepted_with_correct_scores(path, session):
    source = path.read_text()
    verdict = validate_source(source, session, CONFIG)
    assert verdict.accepted, verdict.to_json()
    assert verdict.candidate is not None and verdict.candidate.probe == verdict.probe
    prompts, completions, answers = (list(col) for col in zip(*SAMPLE_ROWS, strict=True))
    chat = [[{"role": "assistant", "content": c}] for c in completions]
    for shaped in (completions, chat):
        expected = _in_process(source, verdict.name, prompts, shaped, answers)
        result = session.call(source, verdict.name, prompts, shaped, answer=answers)
        assert result.ok, result.error
        assert result.scores == pytest.approx(expected)


def test_canary_dir_is_writable_by_nobody(canary_dir):
    assert stat.S_IMODE(canary_dir.stat().st_mode) == 0o777
