"""Spot re-probes on the real path: a time bomb offered by a replayed LLM reply in a real smoke search.

The bomb counts its calls in its worker: honest for its first `HONEST_CALLS`, inverted after. Validation makes
`VALIDATION_CALLS` = 8 calls (`probes.probe_batches` on the shipped bank with `candidates.reprobe_every=1`, so one
pass only: 5 batches of two bank groups, one reordered repeat, then two batches each in a fresh worker), so at most
6 in one worker: with `HONEST_CALLS` = 6 the bomb passes validation honestly. A trial's reward starts a fresh
worker, and the spot re-probes (`candidates.reprobe_every=1`: after every training call) run in that worker and
count as calls: training call k is worker call 2k-1 and its re-probe worker call 2k, so the re-probe after training
call 4 (worker call 8) is the first checked call after the bomb went off (worker call 7). TRL scores each training
step once, so the trial fails during step 4 (3 steps done) of `training.steps=5`.

One module-scoped search holds every assertion: round 1 is the bomb, round 2 an honest reward proposed with round 1's
feedback, round 3 a late bomb (`LATE_BOMB`: honest for its first `LATE_HONEST_CALLS` = 10 worker calls, so through
validation and its 5-step screening trial, whose 5 training calls and 5 re-probes are 10). Finalize trains its jobs
for `finalize.steps=8`, so the late bomb goes off in its ensemble: at worker call 11, training call 6, caught by the
re-probe after it. The random control draws from the candidates that did not crash or fail a re-probe (the first
bomb is left out), so it holds the honest reward and the late bomb.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import ray

from reward_search.candidates.candidate import CandidateRecordError, CandidateStore, RewardCandidate
from reward_search.candidates.probes import probe_batches
from reward_search.candidates.settings import ProbeConfig
from reward_search.config import load_config
from reward_search.proposers.base import Proposer
from reward_search.proposers.settings import ProposerConfig
from reward_search.task import get_task
from reward_search.training.spec import RewardSpec, trial_key

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "experiments" / "smoke.yaml"
MODEL = "anthropic/claude-sonnet-4-5"  # in litellm's local price list: mock calls have a known cost
VALIDATION_CALLS = 8
HONEST_CALLS = 6
BOMB = f"""
_CALLS = [0]


def answer_bomb(prompts, completions, answer, **kwargs):
    _CALLS[0] += 1
    scores = []
    for completion, gold in zip(completions, answer):
        text = completion if isinstance(completion, str) else str(completion[-1].get("content") or "")
        honest = 1.0 if text.replace(" ", "").endswith(str(gold)) or f"<solution>{{gold}}</solution>" in text else 0.0
        scores.append(honest if _CALLS[0] <= {HONEST_CALLS} else 1.0 - honest)
    return scores
"""
LATE_HONEST_CALLS = 10
LATE_BOMB = BOMB.replace("answer_bomb", "late_bomb").replace(f"<= {HONEST_CALLS} else", f"<= {LATE_HONEST_CALLS} else")
HONEST = (
    "def gold_mentioned(prompts, completions, answer, **kwargs):\n"
    "    return [1.0 if str(gold) in str(c) else 0.0 for c, gold in zip(completions, answer)]\n"
)

pytestmark = pytest.mark.slow


def test_validation_makes_the_calls_the_bomb_is_timed_for():
    """The call count the module docstring relies on: 8 calls, 6 of them in the first worker."""
    calls = probe_batches(ProbeConfig(seed=0))
    assert len(calls) == VALIDATION_CALLS and [b.check for b in calls].index("fresh") == HONEST_CALLS


def _reply(name: str, source: str) -> str:
    return json.dumps([{"name": name, "code": source, "description": f"{name} reward"}])


@pytest.fixture(scope="module")
def bomb_run(tmp_path_factory):
    from reward_search.testing.llm import scripted_search

    folder = tmp_path_factory.mktemp("bomb")
    config = load_config(
        SMOKE,
        [
            f"run.storage_path={folder}",
            "run.name=bomb",
            "search.rounds=3",
            "search.candidates_per_round=1",
            "search.max_concurrent_trials=1",
            "training.steps=5",
            "candidates.reprobe_every=1",
            "proposer.kind=llm",
            f"proposer.model={MODEL}",
            "finalize.recipes=[{name: top1, kind: top_k, k: 1}]",
            "finalize.baseline=false",
            "finalize.seeds=1",
            "finalize.random_k=2",
            "finalize.steps=8",
        ],
    )
    replies = (_reply("answer_bomb", BOMB), _reply("gold_mentioned", HONEST), _reply("late_bomb", LATE_BOMB))
    outcome = scripted_search(config, replies)
    return config, folder / "bomb", {e.name: e for e in outcome.entries}


def test_the_bomb_fails_in_its_trial_with_the_reprobe_reason(bomb_run):
    config, run_dir, entries = bomb_run
    bomb, honest = entries["answer_bomb"], entries["gold_mentioned"]
    assert honest.status == "done" and honest.steps == 5, (honest.status, honest.reasons)
    assert bomb.status == "failed", (bomb.status, bomb.reasons)
    assert bomb.reasons[-1].startswith("spot re-probe after 4 calls") and "answer_bomb" in bomb.reasons[-1]
    assert bomb.steps == 3  # it trained 3 steps: the re-probe after the 4th training call caught it
    # the trial trained with the record validation wrote (probe report included), under an unchanged key
    record = CandidateStore(run_dir / "candidates").accepted(bomb.candidate_id)
    assert record.probe is not None and record.probe["calls"] == VALIDATION_CALLS and record.probe["reprobe"]
    marker = json.loads((Path(bomb.trial_dir) / "trial.json").read_text())
    assert marker["spec"]["candidates"][0]["probe"] == record.probe
    assert marker["spec"]["candidates"][0] == record.to_dict()
    bare = RewardCandidate(name=record.name, source=record.source)  # no verdict, no probe: the same trial
    data = get_task(config).load_splits().manifest
    assert trial_key(config, RewardSpec((bare,)), data) == trial_key(config, RewardSpec((record,)), data)
    assert trial_key(config, RewardSpec((record,)), data) == bomb.trial_key == marker["key"]


def test_status_and_the_next_rounds_feedback_give_the_reason(bomb_run):
    _, run_dir, entries = bomb_run
    status = subprocess.run(
        [sys.executable, "-m", "reward_search.cli", "status", str(run_dir)], capture_output=True, text=True
    )
    assert status.returncode == 0, status.stderr
    line = next(row for row in status.stdout.splitlines() if "answer_bomb" in row)
    assert " failed " in line and "spot re-probe after 4 calls" in line
    feedback = (run_dir / "feedback" / "round-2.md").read_text()
    assert "answer_bomb (round 1, failed): spot re-probe after 4 calls" in feedback
    transcript = json.loads((run_dir / "proposals" / "round-2" / "call-1.json").read_text())
    prompt = "\n".join(m["content"] for m in transcript["request"]["messages"])
    assert "answer_bomb (round 1, failed): spot re-probe after 4 calls" in prompt  # what the proposer was sent
    assert entries["gold_mentioned"].round == 2


def test_a_time_bomb_member_ends_its_finalize_job_with_the_reason(bomb_run):
    _, run_dir, entries = bomb_run
    late = entries["late_bomb"]
    assert late.status == "done" and late.steps == 5, (late.status, late.reasons)  # honest through screening
    jobs = {job["name"]: job for job in json.loads((run_dir / "finalize.json").read_text())["jobs"]}
    control = jobs["random"]
    assert sorted(control["members"]) == ["gold_mentioned", "late_bomb"]  # the caught bomb is not drawn
    assert control["result"]["status"] == "failed", control["result"]
    assert (
        control["result"]["error"].startswith("spot re-probe after 6 calls")
        and "late_bomb" in control["result"]["error"]
    )
    top1 = jobs["top1"]  # the better of the two done rewards: it trains 8 steps, so the late bomb fails it too
    assert top1["members"] in (["gold_mentioned"], ["late_bomb"])
    assert top1["result"]["status"] == ("done" if top1["members"] == ["gold_mentioned"] else "failed")


def test_a_missing_record_is_an_error_naming_the_file(tmp_path):
    """The driver and finalize load `candidates/<id>.json`: never a rebuilt, probe-less candidate."""
    from reward_search.search.finalize import stored_members

    store = CandidateStore(tmp_path / "candidates")
    accepted = RewardCandidate.from_source(HONEST, status="accepted", probe={"reprobe": [{"score": 1.0}]})
    store.save(accepted)
    store.set_status(accepted.id, "stopped", "ASHA")  # a later status never changes what trains
    assert store.accepted(accepted.id) == accepted
    missing = RewardCandidate.from_source(BOMB)
    with pytest.raises(CandidateRecordError, match=rf"{missing.id}\.json: the candidate's record is missing"):
        store.accepted(missing.id)
    (tmp_path / "candidates" / f"{missing.id}.json").write_text("{not json")
    with pytest.raises(CandidateRecordError, match="unreadable candidate record"):
        store.accepted(missing.id)
    rejected = RewardCandidate.from_source(BOMB.replace("answer_bomb", "other_bomb"), status="rejected")
    store.save(rejected)
    with pytest.raises(CandidateRecordError, match="rejected at validation, not accepted"):
        stored_members(tmp_path)(_Entry(rejected.id))


class _Entry:
    def __init__(self, candidate_id: str) -> None:
        self.candidate_id = candidate_id


def test_a_queued_candidate_without_its_record_fails_loudly_and_a_resume_names_the_file(tmp_path):
    """The searcher never starts a trial without the validated record: the entry fails with the file named, the
    search records an error (finalize does not run), and a resume refuses before Tune starts."""
    from reward_search.errors import UserError
    from reward_search.search.driver import SearchRun
    from reward_search.search.leaderboard import leaderboard_actor
    from reward_search.search.searcher import RewardSearcher
    from reward_search.testing.local_ray import start_local_ray

    config = load_config(SMOKE, [f"run.storage_path={tmp_path}", "run.name=lost"])
    run_dir = tmp_path / "lost"
    accepted = RewardCandidate.from_source(HONEST, status="accepted", probe={"reprobe": []})
    start_local_ray(num_cpus=1)
    try:
        board = leaderboard_actor(run_dir, "lost-record")
        assert ray.get(board.add_candidate.remote(accepted.to_dict(), 1, "accepted", []))
        record = run_dir / "candidates" / f"{accepted.id}.json"
        record.unlink()  # lost after validation
        run = SearchRun(config, run_dir, board, proposer=_NoProposer())
        with pytest.raises(UserError, match=rf"{record}: the candidate's record is missing"):
            run.resume_point()
        searcher = RewardSearcher(board, lambda r, n: [], run.make_params, rounds=1, per_round=1)
        searcher.prime(1, {1}, [(1, accepted.id)], 1)
        assert searcher.suggest("trial-1") == RewardSearcher.FINISHED  # nothing started
        entry = ray.get(board.get.remote(accepted.id))
        assert entry.status == "failed" and str(record) in entry.reasons[-1]
        assert searcher.errors and str(record) in searcher.errors[0]
    finally:
        ray.shutdown()


class _NoProposer(Proposer):
    """A proposer that writes nothing: the test's search has its one candidate already (the hooks are no-ops)."""

    kind = "none"

    def __init__(self) -> None:
        super().__init__(ProposerConfig())

    def propose(self, feedback, n: int, round: int) -> list[RewardCandidate]:
        return []
