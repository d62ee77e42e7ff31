"""The training-time reward: TRL signature and name, None on failure, CandidateCrashed, pickling, threads."""

from __future__ import annotations

import pickle
import threading

import pytest

from reward_search.candidates.candidate import RewardCandidate
from reward_search.candidates.rewards import CandidateCrashed, SandboxedReward
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
