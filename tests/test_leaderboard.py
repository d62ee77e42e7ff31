"""The leaderboard's append-only storage: replay, compaction, idempotent events, constant update cost."""

from __future__ import annotations

import json
import time
from pathlib import Path

from reward_search.candidates.candidate import Origin, RewardCandidate
from reward_search.candidates.records import LeaderboardEntry
from reward_search.search.leaderboard import EVENTS_FILE, LEADERBOARD_FILE, LeaderboardCore, load_entries


def _candidate(i: int) -> dict:
    source = f"def reward_{i}(completions, **kwargs):\n    return [float(len(c) % {i + 2}) for c in completions]\n"
    return RewardCandidate(name=f"reward_{i}", source=source, origin=Origin(proposer="test", round=1)).to_dict()


def _ids(board: LeaderboardCore) -> list[str]:
    return [e.candidate_id for e in board.all()]


def test_changes_are_logged_and_replayed_after_a_restart(tmp_path: Path) -> None:
    board = LeaderboardCore(str(tmp_path), compact_every=1000)
    for i in range(3):
        assert board.add_candidate(_candidate(i), 1, "accepted", [], conditioned_on=i)
    cid = _ids(board)[1]
    board.update(cid, status="done", accuracy=0.5, correct=5, n=10)
    board.append_dev_point(cid, 0.25)
    lines = (tmp_path / EVENTS_FILE).read_text().splitlines()
    # The first add wrote the snapshot (there was none); the later changes are one line each.
    assert [json.loads(line)["op"] for line in lines] == ["add", "add", "update", "dev"]
    # A new process (an actor restarted by Ray) sees the same board: snapshot + replayed log.
    again = {e.candidate_id: e for e in load_entries(tmp_path)}
    assert again[cid].status == "done" and again[cid].accuracy == 0.5 and again[cid].dev_curve == [0.25]
    assert again[cid].ci_low is not None and again[cid].ci_low < 0.5 < again[cid].ci_high
    assert sorted(e.conditioned_on for e in again.values()) == [0, 1, 2]


def test_retried_events_apply_once(tmp_path: Path) -> None:
    board = LeaderboardCore(str(tmp_path), compact_every=1000)
    board.add_candidate(_candidate(0), 1, "accepted", [])
    cid = _ids(board)[0]
    assert board.append_dev_point(cid, 0.1, event_id="t1:dev:1")
    assert not board.append_dev_point(cid, 0.1, event_id="t1:dev:1")
    board.update(cid, event_id="t1:done", status="done", accuracy=0.7, correct=7, n=10)
    board.update(cid, event_id="t1:screening", status="screening")
    board.update(cid, event_id="t1:done", status="done", accuracy=0.7, correct=7, n=10)  # retry: no change
    assert board.get(cid).dev_curve == [0.1]
    assert board.get(cid).status == "screening"
    # The ids survive a compaction and a restart, so a late retry is still recognised.
    board.compact()
    later = LeaderboardCore(str(tmp_path))
    assert not later.append_dev_point(cid, 0.1, event_id="t1:dev:1")
    assert later.get(cid).dev_curve == [0.1]


def test_compaction_writes_parquet_and_empties_the_log(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    board = LeaderboardCore(str(tmp_path), compact_every=2)
    for i in range(6):
        board.add_candidate(_candidate(i), 1, "accepted", [])
    # Snapshots after the 1st add (none yet), then after max(2, entries / 2) events: the 3rd and the 6th.
    assert pq.read_table(tmp_path / LEADERBOARD_FILE).num_rows == 6
    assert (tmp_path / EVENTS_FILE).read_text() == ""
    board.add_candidate(_candidate(6), 1, "accepted", [])
    assert len((tmp_path / EVENTS_FILE).read_text().splitlines()) == 1
    assert pq.read_table(tmp_path / LEADERBOARD_FILE).num_rows == 6
    assert len(load_entries(tmp_path)) == 7  # snapshot + log
    assert board.compact() == 7
    assert (tmp_path / EVENTS_FILE).read_text() == ""
    assert pq.read_table(tmp_path / LEADERBOARD_FILE).num_rows == 7


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    board = LeaderboardCore(str(tmp_path), compact_every=1000)
    board.add_candidate(_candidate(0), 1, "accepted", [])
    cid = _ids(board)[0]
    board.log.close()
    with (tmp_path / EVENTS_FILE).open("a") as handle:
        handle.write('{"id": "x", "op": "upd')  # a crash mid-write
    assert [e.candidate_id for e in load_entries(tmp_path)] == [cid]


def _seed_board(folder: Path, count: int, with_files: int = 10) -> list[str]:
    """A run directory whose snapshot holds `count` accepted candidates (built in memory, written once).

    The first `with_files` are real candidates with their files; the rest carry synthetic ids (cheap to make).
    """
    board = LeaderboardCore(str(folder))
    for i in range(count):
        if i < with_files:
            cand = RewardCandidate.from_dict(_candidate(i))
            board.store.save(cand)
            cid, name, source = cand.id, cand.name, cand.source
        else:
            cid, name, source = f"{i:016x}", f"reward_{i}", f"def reward_{i}(completions, **kw):\n    return []\n"
        board.entries[cid] = LeaderboardEntry(
            candidate_id=cid, name=name, round=1 + i // 100, proposer="test", status="accepted", source=source
        )
    board.compact()
    return list(board.entries)


def test_update_latency_is_flat_at_2000_candidates(tmp_path: Path) -> None:
    ids = _seed_board(tmp_path, 2000)
    board = LeaderboardCore(str(tmp_path))
    assert len(board.entries) == 2000
    chosen = ids[:10] * 60  # candidates whose files exist (status changes are logged beside them)
    started = time.perf_counter()
    for n, cid in enumerate(chosen):
        board.update(cid, event_id=f"{cid}:s{n}", status="screening")
        board.append_dev_point(cid, 0.1)
        board.update(cid, status="done", accuracy=0.5, correct=5, n=10, train_seconds=1.0, gpu_hours=0.001)
    seconds = time.perf_counter() - started
    stats = board.latency()
    assert stats["count"] == 1800
    assert stats["p99"] < 0.050, f"p99 update latency {stats['p99'] * 1000:.1f} ms at 2,000 candidates"
    assert seconds / 1800 < 0.010  # mean per change, the periodic snapshots included
    again = load_entries(tmp_path)
    assert len(again) == 2000 and sum(e.status == "done" for e in again) == 10
    assert all(len(e.dev_curve) == 60 for e in again if e.status == "done")
