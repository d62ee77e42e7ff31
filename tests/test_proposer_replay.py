"""A proposer call that a killed driver re-issues from the state saved before it gives the same candidates.

The driver saves the proposer's state before each call (`DriverState.pending_call`) and, after a kill, loads it
and calls again. The evolutionary proposer draws the same genomes; the LLM proposer reuses the reply saved in the
call's transcript (`proposers/replay.py`) and makes no request, and its spend is the killed call's spend.
"""

from __future__ import annotations

import json

from reward_search.config import DataConfig
from reward_search.proposers.evolutionary import EvolutionaryProposer
from reward_search.proposers.feedback import build_feedback
from reward_search.proposers.llm import LLMProposer
from reward_search.proposers.settings import ProposerConfig
from reward_search.task.gsm8k import load_splits
from reward_search.testing.llm import ScriptedCompletion

MODEL = "anthropic/claude-sonnet-4-5"  # in litellm's local price list: the mock call has a known cost
REWARD = (
    "def gold_seen(prompts, completions, answer, **kwargs):\n"
    "    return [1.0 if str(g) in str(c) else 0.0 for c, g in zip(completions, answer)]\n"
)


def _llm(replies: list[str]) -> LLMProposer:
    config = ProposerConfig(kind="llm", model=MODEL, seed=1)
    return LLMProposer(config, train=load_splits(DataConfig()).train, completion=ScriptedCompletion(replies))


def _ids(candidates) -> list[str]:
    return [c.id for c in candidates]


def test_the_llm_call_replayed_after_a_kill_reuses_its_saved_reply(tmp_path):
    feedback = build_feedback([], 1)
    first = _llm([json.dumps([{"name": "gold_seen", "code": REWARD, "description": "gold in the text"}])])
    first.attach_run_dir(tmp_path)
    before = json.loads(json.dumps(first.state()))  # what the driver saves before the call
    made = first.propose(feedback, 2, round=1)
    assert _ids(made) and first.usage().cost_usd > 0

    again = _llm([])  # any request raises: "scripted replies exhausted"
    again.attach_run_dir(tmp_path)
    again.load_state(before)
    replayed = again.propose(feedback, 2, round=1)
    assert _ids(replayed) == _ids(made)
    assert again.usage().to_dict() == first.usage().to_dict()  # the killed call's tokens and dollars, once
    assert sorted(p.name for p in (tmp_path / "proposals" / "round-1").iterdir()) == ["call-1.json"]


def test_an_llm_call_with_another_request_is_not_replayed(tmp_path):
    reply = json.dumps([{"name": "gold_seen", "code": REWARD, "description": "gold in the text"}])
    first = _llm([reply])
    first.attach_run_dir(tmp_path)
    before = json.loads(json.dumps(first.state()))
    first.propose(build_feedback([], 1), 2, round=1)
    again = _llm([reply])
    again.attach_run_dir(tmp_path)
    again.load_state(before)
    again.propose(build_feedback([], 1), 3, round=1)  # asks for 3, not 2: a new request, in a new call file
    assert again.records[-1].call == 1
    assert sorted(p.name for p in (tmp_path / "proposals" / "round-1").iterdir()) == ["call-1.json", "call-2.json"]


def test_the_evolutionary_call_replayed_from_its_saved_state_draws_the_same_genomes():
    config = ProposerConfig(kind="evolutionary", seed=3)
    first = EvolutionaryProposer(config)
    before = json.loads(json.dumps(first.state()))
    made = first.propose(build_feedback([], 1), 3, round=1)
    again = EvolutionaryProposer(config)
    again.load_state(before)
    assert _ids(again.propose(build_feedback([], 1), 3, round=1)) == _ids(made)
    assert again.state() == first.state()
