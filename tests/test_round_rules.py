"""The round rules (barrier, async, steady) on a virtual clock, in-process, without Ray.

`VirtualClock` is both the searcher's proposal executor (a proposal finishes `latency` virtual seconds after it
is submitted) and Tune's stand-in (a trial starts whenever a slot is free and a candidate is queued, and runs its
virtual duration). The searcher is the real `RewardSearcher` with its real `_maybe_propose`; only the hand-out
and completion, which talk to the leaderboard actor, go through the rules directly.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

import pytest
from ray import cloudpickle

from reward_search.search.rounds import RoundRules, ThreadExecutor
from reward_search.search.searcher import RewardSearcher


class VirtualClock:
    """A discrete-event run of a search: proposals and trials in virtual seconds."""

    def __init__(self, slots: int, durations: list[float], latency: float = 1.0) -> None:
        self.slots, self.durations, self.latency = slots, durations, latency
        self.now = 0.0
        self.proposal: tuple[float, Callable[[], None]] | None = None  # (done at, work)
        self.running: list[tuple[float, str]] = []  # (end, trial id)
        self.proposals: list[dict] = []  # per proposal: round, wanted, opened at, trials finished when it ran
        self.trials: dict[str, dict] = {}
        self.finished = 0
        self.peak_ahead = 0  # the most candidates queued or running at once
        self.accept: Callable[[int, int], int] = lambda round, wanted: wanted
        self.searcher: RewardSearcher | None = None

    # the executor seam
    @property
    def busy(self) -> bool:
        return self.proposal is not None

    def submit(self, name: str, work: Callable[[], None]) -> None:
        self.proposal = (self.now + self.latency, work)

    def fill(self, round: int, wanted: int) -> list[str]:
        opened = self.now - self.latency  # the work runs when the proposal is done
        self.proposals.append({"round": round, "wanted": wanted, "at": opened, "finished": self.finished})
        return [f"r{round}-c{i}" for i in range(self.accept(round, wanted))]

    def run(self, searcher: RewardSearcher, limit: int = 200) -> RoundRules:
        self.searcher, rules = searcher, searcher.rules
        searcher._maybe_propose()
        for _ in range(limit):
            self._hand_out(rules)
            next_end = self.running[0][0] if self.running else math.inf
            next_proposal = self.proposal[0] if self.proposal else math.inf
            if next_end == next_proposal == math.inf:
                assert rules.complete(self.busy), "the clock stopped before the rules said complete"
                return rules
            if next_proposal <= next_end:
                self.now, work = self.proposal
                self.proposal = None
                work()
            else:
                self.now, trial_id = heapq.heappop(self.running)
                self.trials[trial_id]["end"] = self.now
                rules.completed(trial_id)
                self.finished += 1
            searcher._maybe_propose()
        raise AssertionError("the search did not finish")

    def _hand_out(self, rules: RoundRules) -> None:
        """Tune asks for a trial while a slot is free; with nothing queued, `suggest` lets the rules propose."""
        while len(self.running) < self.slots:
            if (slot := rules.take()) is None:
                self.searcher._maybe_propose()
                return
            trial_id = f"t{len(self.trials)}"
            rules.started(trial_id, slot)
            seconds = self.durations[len(self.trials) % len(self.durations)]
            self.trials[trial_id] = {"round": slot[0], "start": self.now, "finished_before": self.finished}
            heapq.heappush(self.running, (self.now + seconds, trial_id))
            if rules.mode == "steady":
                self.searcher._maybe_propose()  # as `suggest` does after each steady hand-out
            self.peak_ahead = max(self.peak_ahead, len(rules.pending) + len(rules.queue))


def _search(clock: VirtualClock, mode: str, rounds: int, per_round: int, **kw) -> RewardSearcher:
    return RewardSearcher(
        None, clock.fill, lambda e: {}, rounds, per_round, mode=mode, slots=clock.slots, executor=clock, **kw
    )


def test_barrier_opens_a_round_only_when_every_trial_of_the_last_one_finished():
    clock = VirtualClock(slots=4, durations=[1.0, 5.0])
    rules = clock.run(_search(clock, "barrier", rounds=3, per_round=2))
    assert [(p["round"], p["wanted"]) for p in clock.proposals] == [(1, 2), (2, 2), (3, 2)]
    assert [p["finished"] for p in clock.proposals] == [0, 2, 4]  # each round saw all of the one before
    for round in (1, 2):
        last_end = max(t["end"] for t in clock.trials.values() if t["round"] == round)
        assert clock.proposals[round]["at"] == last_end  # opened at the slowest trial's end, not before
    assert len(clock.trials) == 6 and rules.searched_all() and rules.stop_reason is None


def test_async_opens_the_next_round_once_the_current_one_is_handed_out():
    clock = VirtualClock(slots=6, durations=[10.0])
    rules = clock.run(_search(clock, "async", rounds=3, per_round=2))
    assert [p["round"] for p in clock.proposals] == [1, 2, 3]
    assert [p["at"] for p in clock.proposals] == [0.0, 1.0, 2.0]  # no round waited for a trial
    assert [p["finished"] for p in clock.proposals] == [0, 0, 0]
    assert len(clock.trials) == 6 and rules.complete(proposing=False)


def test_steady_keeps_slots_busy_within_the_lookahead_and_stops_at_the_budget():
    clock = VirtualClock(slots=2, durations=[3.0, 7.0, 4.0])
    rules = clock.run(_search(clock, "steady", rounds=4, per_round=2, max_staleness=1))
    assert clock.proposals[0] == {"round": 1, "wanted": 3, "at": 0.0, "finished": 0}  # 2 slots + 1 ahead
    assert sum(p["wanted"] for p in clock.proposals) == 8 == rules.accepted_total == len(clock.trials)
    assert [p["round"] for p in clock.proposals] == list(range(1, len(clock.proposals) + 1))  # batches numbered
    assert clock.peak_ahead <= 3  # never more than slots + max_staleness queued or running
    assert all(p["wanted"] <= 3 for p in clock.proposals)
    later = clock.proposals[1:]
    assert later and all(p["finished"] >= 1 for p in later)  # every later batch is conditioned on a result
    assert rules.searched_all() and rules.stop_reason is None


def test_steady_without_lookahead_proposes_only_for_a_free_slot():
    clock = VirtualClock(slots=2, durations=[2.0, 5.0])
    clock.run(_search(clock, "steady", rounds=2, per_round=2))
    assert clock.proposals[0]["wanted"] == 2 and clock.peak_ahead <= 2
    assert all(t["finished_before"] >= 1 for t in list(clock.trials.values())[2:])


def test_a_steady_batch_that_accepts_nothing_stops_the_search():
    clock = VirtualClock(slots=2, durations=[1.0])
    clock.accept = lambda round, wanted: 0 if round == 2 else wanted
    rules = clock.run(_search(clock, "steady", rounds=3, per_round=2))
    assert rules.stop_reason == "batch 2 accepted no candidate (see the rejections in the leaderboard)"
    assert len(clock.trials) == 2 and [p["round"] for p in clock.proposals] == [1, 2]


def test_a_budget_stop_reason_ends_the_search_before_a_round_opens():
    reasons = iter([None, "proposer.budget_usd spent"])
    clock = VirtualClock(slots=2, durations=[1.0])
    searcher = _search(clock, "barrier", rounds=5, per_round=2, budget_stop_reason=lambda: next(reasons))
    rules = clock.run(searcher)
    assert [p["round"] for p in clock.proposals] == [1] and len(clock.trials) == 2
    assert rules.stop_reason == "proposer.budget_usd spent" and not rules.searched_all()


def test_a_failing_proposal_stops_the_search_with_the_error():
    clock = VirtualClock(slots=2, durations=[1.0])

    def fill(round: int, wanted: int) -> list[str]:
        if round == 2:
            raise RuntimeError("the LLM server went away")
        return clock.fill(round, wanted)

    searcher = RewardSearcher(None, fill, lambda e: {}, 3, 2, mode="async", slots=2, executor=clock)
    rules = clock.run(searcher)
    assert rules.stop_reason == "proposing round 2 failed: the LLM server went away"
    assert searcher.errors == ["round 2: RuntimeError: the LLM server went away"] and len(clock.trials) == 2


@pytest.mark.parametrize("mode", ["barrier", "async"])
def test_a_resumed_run_finishes_the_round_it_was_proposing_then_continues(mode):
    clock = VirtualClock(slots=2, durations=[1.0])
    searcher = _search(clock, mode, rounds=3, per_round=2)
    searcher.prime(2, {1}, [(2, "r2-old")], accepted_total=3)  # round 2 was cut off after one candidate
    rules = clock.run(searcher)
    assert [(p["round"], p["wanted"]) for p in clock.proposals] == [(2, 2), (3, 2)]
    assert clock.trials["t0"]["round"] == 2 and rules.searched_all()


def test_a_resumed_steady_batch_is_not_refilled():
    rules = RoundRules("steady", rounds=2, per_round=2, round=1, queue=[(1, "a")], accepted_total=1)
    assert rules.next_round(slots=2, budget_stop=lambda: None) == (2, 1)  # 2 free - 1 queued; budget 4 - 1
    assert rules.proposed_rounds == {1}


def test_an_unknown_mode_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="barrier, async, steady.*'sync'"):
        RoundRules("sync", 1, 1)


def test_the_searcher_pickles_without_its_thread_and_tune_state_holds_nothing(tmp_path):
    searcher = RewardSearcher(None, lambda r, n: [], lambda e: {}, rounds=3, per_round=2, mode="async")
    assert isinstance(searcher.executor, ThreadExecutor)
    searcher.prime(2, {1, 2}, [(2, "c3")])
    searcher.rules.started("trial-a", (2, "c2"))
    searcher._maybe_propose()
    assert not searcher.proposing  # c3 of round 2 is still queued: async waits to hand it out
    searcher.executor.submit("idle", lambda: None)  # a thread object, which must not travel in the pickle
    clone = cloudpickle.loads(cloudpickle.dumps(searcher))  # Tune pickles the searcher with its experiment state
    assert not clone.proposing and clone.rules == searcher.rules
    searcher.save(str(tmp_path / "searcher.json"))  # the run directory is the resume point, not Tune's file
    assert not (tmp_path / "searcher.json").exists()
