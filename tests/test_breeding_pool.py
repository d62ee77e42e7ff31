"""Which ranked rewards the evolutionary proposer breeds from (pure), and that its children come only from them."""

from __future__ import annotations

import dataclasses

from reward_search.candidates.records import LeaderboardEntry
from reward_search.proposers.evolutionary import EvolutionaryProposer, breeding_pool
from reward_search.proposers.feedback import build_feedback
from reward_search.proposers.settings import ProposerConfig
from reward_search.search.leaderboard import wilson_interval


def scored(candidate, correct: int, n: int = 100) -> LeaderboardEntry:
    low, high = wilson_interval(correct, n)
    return LeaderboardEntry(
        candidate_id=candidate.id,
        name=candidate.name,
        round=candidate.origin.round,
        proposer=candidate.origin.proposer,
        status="done",
        source=candidate.source,
        accuracy=correct / n,
        correct=correct,
        n=n,
        ci_low=low,
        ci_high=high,
    )


def test_rewards_credibly_worse_than_the_best_do_not_breed():
    first = EvolutionaryProposer(ProposerConfig(seed=3)).propose(build_feedback([], 1), 4, round=1)
    # the story task's round 1: 0.43 and 0.02 dev accuracy on 100 questions, plus two in between
    board = [scored(first[0], 43), scored(first[1], 36), scored(first[2], 30), scored(first[3], 2)]
    ranked = sorted(board, key=lambda e: -e.accuracy)
    pool = breeding_pool(ranked, "accuracy")
    assert [e.accuracy for e in pool] == [0.43, 0.36]  # 0.30's interval ends at 0.397, 0.02's at 0.07
    assert breeding_pool(ranked, "gold_logprob") == ranked  # no intervals to judge by: the whole ranking
    unknown = [ranked[0], dataclasses.replace(ranked[3], ci_high=None)]
    assert breeding_pool(unknown, "accuracy") == unknown  # an entry without an interval is not judged

    proposer = EvolutionaryProposer(ProposerConfig(seed=3))
    children = proposer.propose(build_feedback(board, 2), 12, round=2)
    allowed = {e.candidate_id for e in pool}
    bred = [c for c in children if c.origin.parents]
    assert bred and all(set(c.origin.parents) <= allowed for c in bred)
    assert any(first[0].id in c.origin.parents for c in bred)
