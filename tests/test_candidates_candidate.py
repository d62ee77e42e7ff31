"""RewardCandidate ids and entry detection; the immutable JSON store."""

from __future__ import annotations

import json
import threading

import pytest

from reward_search.candidates.candidate import (
    CandidateStore,
    EntryError,
    Origin,
    RewardCandidate,
    candidate_id,
    find_entry,
)

SOURCE = "def reward(prompts, completions, **kw):\n    return [1.0 for _ in completions]\n"


def test_id_ignores_formatting_and_comments_but_not_name():
    reformatted = "# a comment\ndef reward(prompts,completions,**kw):\n  return [1.0 for _ in completions]\n"
    assert candidate_id(SOURCE, "reward") == candidate_id(reformatted, "reward")
    assert candidate_id(SOURCE, "reward") != candidate_id(SOURCE, "other")
    assert len(candidate_id(SOURCE, "reward")) == 16


def test_entry_detection():
    helpers = "def _h(x):\n    return x\ndef helper(x):\n    return x\ndef score(completions, **kw):\n    return []\n"
    assert find_entry(helpers) == "score"
    assert find_entry(helpers, "helper") == "helper"
    with pytest.raises(EntryError, match="named 'missing'"):
        find_entry(helpers, "missing")
    with pytest.raises(EntryError, match="several"):
        find_entry(helpers + "def other(completions):\n    return []\n")
    with pytest.raises(EntryError, match="no public"):
        find_entry("def f(x):\n    return x\n")


def test_round_trip_and_store_never_overwrites(tmp_path):
    store = CandidateStore(tmp_path)
    candidate = RewardCandidate.from_source(
        SOURCE, description="d", origin=Origin(proposer="llm", round=2, parents=("ab" * 8,))
    ).with_verdict("accepted", (), {"passed": True})
    assert store.save(candidate) is True
    path = store.path(candidate.id)
    before = path.read_bytes()
    assert store.save(candidate) is False  # identical: no-op
    assert store.save(candidate.with_verdict("rejected", ("x",))) is False  # different: still not overwritten
    assert path.read_bytes() == before
    loaded = store.load(candidate.id)
    assert loaded == candidate
    assert json.loads(before)["id"] == candidate.id
    assert list(store.ids()) == [candidate.id]
    assert not list(tmp_path.glob(".*.tmp"))


def test_status_changes_go_to_a_separate_log(tmp_path):
    store = CandidateStore(tmp_path)
    candidate = RewardCandidate.from_source(SOURCE).with_verdict("accepted")
    store.save(candidate)
    before = store.path(candidate.id).read_bytes()
    store.set_status(candidate.id, "screening")
    store.set_status(candidate.id, "crashed", "timeout: timed out after 5s")
    loaded = store.load(candidate.id)
    assert loaded.status == "crashed" and loaded.reasons[-1].startswith("timeout")
    assert store.path(candidate.id).read_bytes() == before
    with pytest.raises(ValueError):
        store.set_status(candidate.id, "bogus")


def test_concurrent_saves_write_once(tmp_path):
    store = CandidateStore(tmp_path)
    candidate = RewardCandidate.from_source(SOURCE)
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(store.save(candidate))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1


def test_tampered_file_is_detected(tmp_path):
    store = CandidateStore(tmp_path)
    candidate = RewardCandidate.from_source(SOURCE)
    store.save(candidate)
    path = store.path(candidate.id)
    data = json.loads(path.read_text())
    data["source"] = data["source"].replace("1.0", "2.0")
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="does not match"):
        store.load(candidate.id)
