"""Damage to a run directory is found and rebuilt, through the real CLI (issue 27 item 5).

One real run (`reward-search run` on the smoke preset: one round of two tiny-model trials, no finalize) is
interrupted as Ctrl-C would after its last trial, before the board's final compaction, so its event log holds the
run's changes as a killed or interrupted driver leaves them. Each test damages a copy of it: a truncated
`leaderboard.parquet`, a deleted event line, a garbage `candidates/<id>.json`, a missing `trials/<key>/result.json`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reward_search.cli import main
from reward_search.search.damage import DAMAGED_EXIT
from reward_search.search.leaderboard import EVENTS_FILE, LEADERBOARD_FILE, load_entries

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "experiments" / "smoke.yaml"

INTERRUPT_BEFORE_COMPACTION = """
import sys
from reward_search.search import driver

def interrupted(*args, **kwargs):
    raise KeyboardInterrupt  # Ctrl-C after the last trial, before the leaderboard's final compaction

driver._collect = interrupted
from reward_search.cli import main
sys.exit(main(sys.argv[1:]))
"""
BOARD_KEYS = ("status", "accuracy", "f1", "correct", "n", "ci_low", "ci_high", "gold_logprob", "steps", "trial_key")


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("damage") / "run"
    command = [sys.executable, "-c", INTERRUPT_BEFORE_COMPACTION, "run", str(SMOKE), "--run-dir", str(run)]
    command += ["--set", "search.rounds=1", "--set", "finalize.enabled=false"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 130, proc.stderr[-3000:]
    entries = load_entries(run)
    assert len(entries) == 2 and all(e.status == "done" and e.trial_key for e in entries), entries
    assert sum(1 for _ in (run / EVENTS_FILE).open()) > 4  # the changes are in the log, not in the snapshot
    return run


def _copy(source: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(source, tmp_path / "run"))


def _board(run: Path) -> dict[str, dict]:
    """Ids, statuses and metrics (no times): what a rebuilt or resumed board must give back exactly."""
    rows = {}
    for entry in load_entries(run):
        summary = {k: v for k, v in entry.curve_summary.items() if "seconds" not in k}
        rows[entry.candidate_id] = {k: getattr(entry, k) for k in BOARD_KEYS} | {
            "dev_curve": entry.dev_curve,
            "curve_summary": summary,
        }
    return rows


def _cli(capsys, *argv: str) -> tuple[int, str, list[str]]:
    """Exit code, stdout and the stderr lines of one real CLI call."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _delete_completion(run: Path, cid: str | None = None) -> str:
    """Delete a candidate's completion event (by default the first one's) from the log; the candidate's id."""
    lines = (run / EVENTS_FILE).read_text().splitlines(keepends=True)
    done = [(i, json.loads(x)) for i, x in enumerate(lines) if '"status":"done"' in x]
    (index, event) = next((i, e) for i, e in done if cid in (None, e["cid"]))
    (run / EVENTS_FILE).write_text("".join(lines[:index] + lines[index + 1 :]))
    return event["cid"]


def test_an_undamaged_run_is_clean(interrupted_run, tmp_path, capsys):
    run = _copy(interrupted_run, tmp_path)
    code, out, err = _cli(capsys, "doctor", str(run))
    assert code == 0 and "no damage found (2 candidates)" in out and not err
    assert "finalize: disabled (finalize.enabled: false)" in out
    code, out, err = _cli(capsys, "status", str(run))
    assert code == 0 and not [line for line in err if "warning" in line] and "damage:" not in out
    assert "finalize: disabled" in out


def test_a_truncated_snapshot_is_shown_rebuilt_and_fixed(interrupted_run, tmp_path, capsys):
    run = _copy(interrupted_run, tmp_path)
    expected = _board(run)
    _truncate(run / LEADERBOARD_FILE)

    code, out, err = _cli(capsys, "status", str(run))
    warnings = [line for line in err if line.startswith("reward-search: warning:")]
    assert code == 0 and len(warnings) == 1 and len(err) == 1, err  # one line, no traceback
    assert f"{LEADERBOARD_FILE}: does not read (" in warnings[0]
    assert out.count(" done ") == 2 and "damage: 1 problem(s)" in out  # the board as rebuilt in memory

    code, out, err = _cli(capsys, "report", str(run), "--resamples", "100")
    assert code == 0 and len(err) == 1 and f"{LEADERBOARD_FILE}: does not read" in err[0], err
    assert f"{LEADERBOARD_FILE}: does not read" in (run / "report" / "report.md").read_text()

    code, out, _ = _cli(capsys, "doctor", str(run))
    assert code == DAMAGED_EXIT and out.splitlines()[0].startswith(f"{LEADERBOARD_FILE}: does not read")
    code, out, _ = _cli(capsys, "doctor", str(run), "--fix")
    assert code == 0 and f"rebuilt: {LEADERBOARD_FILE}: rewritten with 2 candidates" in out
    assert _board(run) == expected and (run / EVENTS_FILE).read_text() == ""
    assert _cli(capsys, "doctor", str(run))[0] == 0


def test_a_deleted_event_line_is_recovered_from_the_trial_result(interrupted_run, tmp_path, capsys):
    run = _copy(interrupted_run, tmp_path)
    expected = _board(run)
    cid = _delete_completion(run)
    assert next(e for e in load_entries(run) if e.candidate_id == cid).status == "screening"  # what it showed

    code, out, err = _cli(capsys, "status", str(run))
    assert code == 0 and len(err) == 1, err
    key = expected[cid]["trial_key"]
    assert f"trials/{key}/result.json: says done, the leaderboard says screening" in err[0]
    assert out.count(" done ") == 2

    code, out, _ = _cli(capsys, "doctor", str(run), "--fix")
    assert code == 0 and _board(run) == expected


def test_a_garbage_candidate_record_is_named_and_rewritten_from_its_entry(interrupted_run, tmp_path, capsys):
    run = _copy(interrupted_run, tmp_path)
    cid = load_entries(run)[0].candidate_id
    record = run / "candidates" / f"{cid}.json"
    original = json.loads(record.read_text())
    record.write_text("{not json")

    code, out, err = _cli(capsys, "status", str(run))
    assert code == 0 and len(err) == 1 and err[0].startswith(f"reward-search: warning: candidates/{cid}.json: unre")
    code, out, _ = _cli(capsys, "doctor", str(run))
    assert code == DAMAGED_EXIT and f"candidates/{cid}.json: unreadable candidate record" in out
    code, out, _ = _cli(capsys, "doctor", str(run), "--fix")
    assert code == 0 and json.loads(record.read_text()) == original  # the same record, probe report included
    assert (run / "candidates" / f"{cid}.json.corrupt").read_text() == "{not json"


def test_a_record_lost_with_the_snapshot_is_reported_lost(interrupted_run, tmp_path, capsys):
    run = _copy(interrupted_run, tmp_path)
    log = (run / EVENTS_FILE).read_text()
    compacted = next(e.candidate_id for e in load_entries(run) if f"add:{e.candidate_id}" not in log)
    _truncate(run / LEADERBOARD_FILE)
    (run / "candidates" / f"{compacted}.json").write_text("garbage")
    code, out, _ = _cli(capsys, "doctor", str(run), "--fix")
    assert code == DAMAGED_EXIT
    assert f"left: candidates/{compacted}.json: unreadable candidate record" in out
    assert "lost: not on the leaderboard either; cannot be rebuilt" in out
    assert len(load_entries(run)) == 1 and compacted not in {e.candidate_id for e in load_entries(run)}


def test_finalize_states_in_status(interrupted_run, tmp_path, capsys):
    run = _copy(interrupted_run, tmp_path)
    trial = run / "tune" / "finalize-recipes-1" / "recipes-top3-00000"
    trial.mkdir(parents=True)
    assert "finalize: interrupted (1 trials started, no finalize.json;" in _cli(capsys, "status", str(run))[1]
    (trial / "error.txt").write_text("Traceback (most recent call last):\n  ...\nValueError: boom\n")
    out = _cli(capsys, "status", str(run))[1]
    assert "finalize: failed (trial recipes-top3-00000: ValueError: boom;" in out
    jobs = [{"name": "top3", "result": {"status": "failed", "error": "no final report"}}, {"name": "b", "result": {}}]
    outcome = {"best_recipe": None, "jobs": jobs, "finished": "2026-12-08T00:00:00Z"}
    (run / "finalize.json").write_text(json.dumps(outcome))
    out = _cli(capsys, "status", str(run))[1]
    assert "finalize: done (finished 2026-12-08T00:00:00Z; best recipe none; 2 jobs, 1 failed: top3: no final" in out


def test_resume_rebuilds_every_damage_and_screens_only_the_lost_trial(interrupted_run, tmp_path):
    run = _copy(interrupted_run, tmp_path)
    expected = _board(run)
    log = (run / EVENTS_FILE).read_text()
    (logged,) = [e for e in load_entries(run) if f"add:{e.candidate_id}" in log]  # the other one's add: in the snapshot
    (compacted,) = [e for e in load_entries(run) if e.candidate_id != logged.candidate_id]
    kept, lost = (run / "trials" / e.trial_key / "result.json" for e in (logged, compacted))
    kept_mtime = kept.stat().st_mtime_ns
    _truncate(run / LEADERBOARD_FILE)
    _delete_completion(run, logged.candidate_id)  # recovered from its trial's result.json
    (run / "candidates" / f"{logged.candidate_id}.json").write_text("{")  # on the board through its logged add
    lost.unlink()

    proc = subprocess.run(
        [sys.executable, "-m", "reward_search.cli", "resume", str(run)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("reward-search: warning:")]
    starts = (  # one line each: the record, the snapshot, the lost event, the missing result
        f"candidates/{logged.candidate_id}.json: unreadable candidate record (JSONDecodeError",
        f"{LEADERBOARD_FILE}: does not read (ArrowInvalid",
        f"{kept.relative_to(run)}: says done, the leaderboard says screening for {logged.name}",
        f"{lost.relative_to(run)}: missing, yet {compacted.name} is done on the leaderboard; a repair sets",
    )
    assert len(warnings) == 4 and all(
        any(w.startswith(f"reward-search: warning: {s}") for w in warnings) for s in starts
    )
    assert _board(run) == expected  # ids, statuses and metrics to the last digit
    assert lost.is_file() and kept.stat().st_mtime_ns == kept_mtime  # only the lost trial ran again
    doctor = subprocess.run([sys.executable, "-m", "reward_search.cli", "doctor", str(run)], capture_output=True)
    assert doctor.returncode == 0, doctor.stdout
