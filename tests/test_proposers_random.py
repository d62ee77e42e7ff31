"""The random control: seeded, uniform, k distinct draws from validated candidates."""

from __future__ import annotations

import json
from collections import Counter

from reward_search.candidates.candidate import RewardCandidate
from reward_search.candidates.records import LeaderboardEntry
from reward_search.proposers.feedback import build_feedback
from reward_search.proposers.random import RandomProposer, draw
from reward_search.proposers.registry import make_proposer
from reward_search.proposers.settings import ProposerConfig


def _pool(size: int) -> list[RewardCandidate]:
    return [
        RewardCandidate.from_source(f"def reward_{i}(prompts, completions, answer, **kwargs):\n    return [{i}.0]\n")
        for i in range(size)
    ]


def test_draws_are_distinct_seeded_and_order_independent():
    pool = _pool(10)
    chosen = draw(pool, 4, seed=123)
    assert len({c.id for c in chosen}) == 4
    assert [c.id for c in draw(list(reversed(pool)) + pool[:3], 4, seed=123)] == [c.id for c in chosen]
    assert [c.id for c in draw(pool, 4, seed=124)] != [c.id for c in chosen]
    assert len(draw(pool, 50, seed=1)) == 10  # never more than the pool


def test_draws_are_uniform():
    pool = _pool(6)
    counts = Counter(c.name for seed in range(3000) for c in draw(pool, 2, seed))
    expected = 3000 * 2 / 6
    assert all(abs(n - expected) < 0.1 * expected for n in counts.values()), counts


def test_proposer_marks_origin_records_the_seed_and_restores():
    pool = _pool(8)
    proposer = make_proposer(ProposerConfig(kind="random", seed=7), pool=tuple(pool))
    assert isinstance(proposer, RandomProposer)
    feedback = build_feedback([], 1)
    first = proposer.propose(feedback, 3, round=1)
    assert all(c.origin.proposer == "random" and c.origin.round == 1 for c in first)
    assert all(c.origin.parents == (c.id,) for c in first)  # same source and name: the original's id
    seed = proposer.state()["draws"][0]["seed"]
    assert all(f"seed {seed}" in c.description for c in first)
    saved = json.loads(json.dumps(proposer.state()))
    second = proposer.propose(feedback, 3, round=1)
    assert not {c.id for c in first} & {c.id for c in second}  # a second call in a round draws others

    resumed = RandomProposer(ProposerConfig(kind="random", seed=7), pool)
    resumed.load_state(saved)
    assert [c.id for c in resumed.propose(feedback, 3, round=1)] == [c.id for c in second]


def test_without_a_pool_it_draws_from_the_feedback_validated_entries():
    pool = _pool(5)
    entries = [
        LeaderboardEntry(c.id, c.name, 1, "llm", status, c.source)
        for c, status in zip(pool, ("done", "rejected", "accepted", "crashed", "failed"), strict=True)
    ]
    proposer = RandomProposer(ProposerConfig(kind="random"))
    chosen = proposer.propose(build_feedback(entries, 2), 10, round=2)
    assert {c.name for c in chosen} == {"reward_0", "reward_2", "reward_4"}
