"""The training-time reward: TRL signature and name, None on failure, CandidateCrashed, pickling, threads."""

from __future__ import annotations

import pickle
import threading

import pytest

from reward_search.candidates.candidate import RewardCandidate
from reward_search.candidates.rewards import CandidateCrashed, CandidateDrifted, SandboxedReward
from reward_search.candidates.settings import CandidatesConfig, SandboxConfig

CONFIG = CandidatesConfig(sandbox=SandboxConfig(call_timeout_s=1.0), max_failed_calls=2)
GOOD = (
    "import re\n"
    "def exact_answer(prompts, completions, answer, **kwargs):\n"
    "    texts = [c if isinstance(c, str) else c[0]['content'] for c in completions]\n"
    "    return [2.0 if f'<solution>{a}</solution>' in t else 0.0 for t, a in zip(texts, answer)]\n"
)
FLAKY = (
    "def flaky(prompts, completions, **kwargs):\n"
    "    if completions[0] == 'boom':\n"
    "        raise ValueError('boom')\n"
    "    if completions[0] == 'hang':\n"
    "        while True:\n"
    "            pass\n"
    "    return [1.0 for _ in completions]\n"
)


@pytest.fixture
def good():
    reward = SandboxedReward(RewardCandidate.from_source(GOOD), CONFIG)
    yield reward
    reward.close()


def test_trl_signature_and_name(good):
    assert good.__name__ == "exact_answer"
    chat = [[{"role": "assistant", "content": "<solution>4</solution>"}], [{"role": "assistant", "content": "5"}]]
    scores = good(
        prompts=["q", "q"], completions=chat, answer=["4", "4"], completion_ids=[[1], [2]], trainer_state=object()
    )
    assert scores == [2.0, 0.0]


def test_failures_give_none_then_crash():
    reward = SandboxedReward(RewardCandidate.from_source(FLAKY), CONFIG)
    try:
        assert reward(["q", "q"], ["fine", "x"]) == [1.0, 1.0]
        assert reward(["q"], ["boom"]) == [None]
        assert reward.metrics()["sandbox/flaky/failed_calls"] == 1.0
        with pytest.raises(CandidateCrashed) as info:
            reward(["q"], ["hang"])
        assert info.value.name == "flaky" and info.value.reason.startswith("timeout")
        with pytest.raises(CandidateCrashed):
            reward(["q"], ["fine"])  # stays crashed
    finally:
        reward.close()


def test_pickles_as_candidate_and_config(good):
    assert good(["q"], ["<solution>1</solution>"], answer=["1"]) == [2.0]
    clone = pickle.loads(pickle.dumps(good))
    try:
        assert clone.__name__ == "exact_answer" and clone._runner is None  # lazily started where it is called
        assert clone(["q"], ["<solution>1</solution>"], answer=["1"]) == [2.0]
    finally:
        clone.close()


def test_usable_from_non_main_threads(good):
    out: dict[int, list] = {}

    def work(i: int) -> None:
        out[i] = good(["q"] * 2, [f"<solution>{i}</solution>", "no"], answer=[str(i), str(i)])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert out == {i: [2.0, 0.0] for i in range(4)}


def _validated(name: str, config: CandidatesConfig) -> RewardCandidate:
    from pathlib import Path

    from reward_search.candidates.sandbox import CandidateRunner
    from reward_search.candidates.validation import validate_source

    source = (Path(__file__).parent / "corpus" / "hostile" / f"{name}.py").read_text()
    with CandidateRunner(config.sandbox, config.policy) as runner:
        verdict = validate_source(source, runner, config)
    assert verdict.accepted, verdict.reasons  # it behaves while validated: that is the point of these two
    assert verdict.candidate is not None and verdict.candidate.probe["reprobe"]
    return verdict.candidate


ROWS = (["q", "q"], ["<solution>5</solution>", "<solution>6</solution>"], ["5", "5"])


def test_time_bomb_is_stopped_by_a_spot_reprobe():
    config = CandidatesConfig(sandbox=SandboxConfig(call_timeout_s=2.0), reprobe_every=10)
    reward = SandboxedReward(_validated("evasion_time_bomb", config), config)
    try:
        with pytest.raises(CandidateDrifted) as info:
            for _ in range(80):
                assert reward(*ROWS[:2], answer=ROWS[2]) in ([1.0, 0.0], [0.0, 1.0])
        assert info.value.status == "failed" and "spot re-probe" in info.value.reason
        assert reward.calls <= 70 and reward.metrics()["sandbox/reward/reprobes"] >= 1
        with pytest.raises(CandidateDrifted):
            reward(*ROWS[:2], answer=ROWS[2])  # stays stopped
    finally:
        reward.close()


@pytest.mark.slow
def test_slow_after_validation_is_stopped_by_the_per_call_budget():
    config = CandidatesConfig(sandbox=SandboxConfig(call_timeout_s=5.0), max_failed_calls=2, reprobe_every=0)
    reward = SandboxedReward(_validated("evasion_slow_after_validation", config), config)
    try:
        outcomes = []
        with pytest.raises(CandidateCrashed) as info:
            for _ in range(70):
                outcomes.append(reward(*ROWS[:2], answer=ROWS[2]))
        assert info.value.status == "crashed" and "over the time budget" in info.value.reason
        assert outcomes[-1] == [None, None] and reward.metrics()["sandbox/reward/over_budget"] == 2
    finally:
        reward.close()
