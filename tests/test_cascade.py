"""The cascade policy (search/cascade.py): signature similarity, the novelty skip, the filter and the order rules,
and where a skipped candidate shows (feedback, status table, control pool)."""

from __future__ import annotations

import pytest

from reward_search.candidates.records import LeaderboardEntry
from reward_search.candidates.status import UNTRAINED, Status
from reward_search.config import PrescreenConfig
from reward_search.proposers.feedback import build_feedback
from reward_search.search.cascade import decide, most_alike, order, peers, skipped_note, spearman
from reward_search.search.finalize import control_pool
from reward_search.search.progress import leaderboard_table


def _pre(signature, auc=0.8, own=0.5, bank="b1"):
    record = {"applicable": True, "bank": bank, "auc": auc, "signal": 1.0, "base_signal": 1.0, "own_signal": own}
    return {**record, "signature": signature, "ms_per_completion": 0.1}


def _entry(cid, status="accepted", pre=None, accuracy=None, round=1, reasons=(), cascade=None):
    probe = {"prescreen": pre} if pre is not None else None
    if cascade is not None:
        probe = {**(probe or {}), "cascade": cascade}
    return LeaderboardEntry(
        candidate_id=cid,
        name=f"r_{cid}",
        round=round,
        proposer="llm",
        status=status,
        source="def r(c, **k): return [0.0]*len(c)",
        probe=probe,
        accuracy=accuracy,
        reasons=list(reasons),
    )


def test_spearman_ranks_ties_and_constants():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([0, 0, 1, 1], [0, 0, 5, 5]) == pytest.approx(1.0)  # a monotone rescale (tied ranks averaged)
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert spearman([0.5] * 4, [2.0] * 4) == 1.0  # two constant signatures behave alike
    assert spearman([0.5] * 4, [1, 2, 3, 4]) == 0.0  # a constant and a varying one do not
    with pytest.raises(ValueError, match="different lengths"):
        spearman([1, 2], [1, 2, 3])


def test_peers_are_screened_or_queued_with_a_signature():
    entries = [
        _entry("a", "accepted", _pre([1, 2])),
        _entry("b", "done", _pre([1, 2]), 0.4),
        _entry("c", "rejected", _pre([1, 2])),
        _entry("d", "skipped", _pre([1, 2])),
        _entry("e", "screening", None),
        _entry("f", "failed", {"applicable": False, "reason": "no bank"}),
    ]
    assert [e.candidate_id for e in peers(entries)] == ["a", "b"]


def test_most_alike_compares_only_the_same_bank():
    others = [_entry("a", "done", _pre([1, 2, 3, 4], bank="other")), _entry("b", "done", _pre([1, 3, 2, 4]))]
    like, rho = most_alike(_pre([1, 2, 3, 4]), others)
    assert like.candidate_id == "b" and rho == pytest.approx(0.8)
    with pytest.raises(ValueError):
        most_alike(_pre([1, 2, 3, 4]), others[:1])


@pytest.mark.parametrize("mode", ["order", "filter"])
def test_novelty_skips_a_lookalike_in_the_acting_modes(mode):
    others = [_entry("x1", "done", _pre([0.1, 0.5, 0.2, 0.9]), 0.43)]
    decision = decide(_pre([1, 5, 2, 9]), PrescreenConfig(mode=mode), others, planted=False)
    assert decision.skip and decision.like == "x1" and decision.rho == pytest.approx(1.0)
    assert decision.reason == "novelty: behaves like r_x1 (x1, rho 1.000)"
    differs = decide(_pre([9, 1, 5, 2]), PrescreenConfig(mode=mode), others, planted=False)
    assert not differs.skip and differs.reason is None


def test_novelty_threshold_is_inclusive_and_configurable():
    others = [_entry("x1", "accepted", _pre([1, 2, 3, 4]))]
    close = _pre([1, 3, 2, 4])  # rho 0.8
    assert decide(close, PrescreenConfig(mode="order", novelty=0.8), others, False).skip
    assert not decide(close, PrescreenConfig(mode="order", novelty=0.81), others, False).skip


def test_record_mode_notes_but_never_skips_and_off_decides_nothing():
    others = [_entry("x1", "done", _pre([1, 2, 3, 4]), 0.4)]
    noted = decide(_pre([1, 2, 3, 4]), PrescreenConfig(mode="record"), others, False)
    assert not noted.skip and noted.like == "x1" and noted.reason.endswith("mode record: trained anyway")
    low = decide(_pre([4, 3, 2, 1], auc=0.1), PrescreenConfig(mode="record"), others, False)
    assert not low.skip and low.reason is None  # the thresholds apply only under filter
    assert decide(_pre([1, 2, 3, 4]), PrescreenConfig(mode="off"), others, False).reason is None


def test_filter_skips_below_min_auc_or_min_signal_and_planted_controls_are_never_skipped():
    settings = PrescreenConfig(mode="filter", min_auc=0.5, min_signal=0.25)
    low_auc = decide(_pre([1, 2], auc=0.31), settings, [], False)
    assert low_auc.skip and low_auc.reason == "filter: AUC 0.31 < min_auc 0.50"
    no_signal = decide(_pre([1, 2], own=0.0), settings, [], False)
    assert no_signal.skip and no_signal.reason == "filter: own signal 0% < min_signal 25%"
    assert not decide(_pre([1, 2], auc=0.5, own=0.25), settings, [], False).skip  # at the threshold: kept
    assert not decide(_pre([1, 2], auc=0.5), PrescreenConfig(mode="order"), [], False).skip  # order never filters
    assert not decide({"applicable": False, "reason": "no wrong"}, settings, [], False).skip  # not applicable
    planted = decide(_pre([1, 2], auc=0.1), settings, [], planted=True)
    assert not planted.skip and planted.reason.endswith("a planted control, trained anyway")


def test_order_puts_the_most_promising_first_stably():
    pres = {
        "a": _pre([1], auc=0.6, own=0.2),
        "b": _pre([1], auc=0.9, own=0.1),
        "c": _pre([1], auc=0.6, own=0.7),
        "d": None,
        "e": _pre([1], auc=0.6, own=0.2),
    }
    assert order(["d", "a", "b", "c", "e"], pres) == ["b", "c", "a", "e", "d"]


def test_a_skipped_candidate_is_untrained_shown_with_its_lookalike_and_told_to_the_proposer():
    assert Status.SKIPPED in UNTRAINED
    like = _entry("x1", "done", _pre([1, 2, 3]), 0.43)
    reason = "skipped, not trained: novelty: behaves like r_x1 (x1, rho 0.998)"
    skipped = _entry("y2", "skipped", _pre([1, 2, 3]), reasons=["probes: ok", reason], cascade={"like": "x1"})
    entries = [like, skipped]
    assert skipped_note(skipped, entries) == "r_x1: done 0.430"
    assert [e.candidate_id for e in control_pool(entries)] == ["x1"]
    table = leaderboard_table(entries)
    line = next(row for row in table.splitlines() if "r_y2" in row)
    assert "skipped" in line and "behaves like r_x1" in line and "[r_x1: done 0.430]" in line
    assert table.splitlines()[2].split()[1] == "r_x1"  # the only ranked row
    text = build_feedback(entries, round=2).render()
    assert "## Not trained: the pre-screen skipped them" in text
    assert "- r_y2 (round 1): skipped, not trained: novelty: behaves like r_x1" in text
    assert "r_x1 scored accuracy 0.430 (done)" in text


# --- one real smoke search through the driver -------------------------------------------------------------------

GOLD = (
    "def gold_mentioned(prompts, completions, answer, **kwargs):\n"
    "    return [1.0 if str(gold) in str(c) else 0.0 for c, gold in zip(completions, answer)]\n"
)
GOLD_X2 = GOLD.replace("gold_mentioned", "gold_mentioned_x2").replace("1.0 if", "2.0 if").replace("0.0 for", "-0.5 for")
SHORT = (
    "def short_text(prompts, completions, answer, **kwargs):\n"
    "    return [1.0 / (1.0 + len(str(c)) / 100.0) for c in completions]\n"
)
TAGGED = """
def tagged_answer(prompts, completions, answer, **kwargs):
    out = []
    for c, gold in zip(completions, answer):
        text = str(c)
        hit = f"<solution>{gold}</solution>" in text.replace(" ", "")
        out.append(1.0 if hit else (0.2 if "<solution>" in text else 0.0))
    return out
"""
TAGGED_X3 = TAGGED.replace("tagged_answer", "tagged_answer_x3").replace("1.0 if hit", "3.0 if hit")


def _reply(*named):
    import json

    return json.dumps([{"name": n, "code": s, "description": f"{n} reward"} for n, s in named])


@pytest.mark.slow
def test_a_smoke_search_skips_lookalikes_and_filtered_candidates(tmp_path):
    """Round 1 offers gold_mentioned, its rescale (rank-identical on the bank: rho 1), short_text (AUC 0.64 on the
    shipped bank, below min_auc 0.7) and tagged_answer (AUC 0.98, rho 0.63 with gold_mentioned): two trials, two
    skips. Round 2 offers a rescale of tagged_answer: skipped, so round 2 trains nothing and does not fail."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from reward_search.config import load_config
    from reward_search.testing.llm import scripted_search

    smoke = Path(__file__).resolve().parent.parent / "experiments" / "smoke.yaml"
    overrides = ["search.rounds=2", "search.candidates_per_round=2", "search.max_proposal_attempts=1"]
    overrides += ["search.prescreen.mode=filter", "search.prescreen.min_auc=0.7", "finalize.enabled=false"]
    overrides += [f"run.storage_path={tmp_path}", "run.name=cascade", "proposer.kind=llm"]
    config = load_config(smoke, [*overrides, "proposer.model=anthropic/claude-sonnet-4-5"])
    replies = (
        _reply(
            ("gold_mentioned", GOLD), ("gold_mentioned_x2", GOLD_X2), ("short_text", SHORT), ("tagged_answer", TAGGED)
        ),
        _reply(("tagged_answer_x3", TAGGED_X3)),
    )
    outcome = scripted_search(config, replies)
    entries = {e.name: e for e in outcome.entries}
    statuses = {name: e.status for name, e in entries.items()}
    assert statuses == {
        "gold_mentioned": "done",
        "tagged_answer": "done",
        "gold_mentioned_x2": "skipped",
        "short_text": "skipped",
        "tagged_answer_x3": "skipped",
    }, {n: (e.status, e.reasons) for n, e in entries.items()}
    gold = entries["gold_mentioned"]
    assert entries["gold_mentioned_x2"].reasons[-1] == (
        f"skipped, not trained: novelty: behaves like gold_mentioned ({gold.candidate_id}, rho 1.000)"
    )
    assert entries["short_text"].reasons[-1] == "skipped, not trained: filter: AUC 0.64 < min_auc 0.70"
    assert entries["tagged_answer_x3"].reasons[-1].startswith("skipped, not trained: novelty: behaves like tagged")
    assert all(e.trial_key is None for e in entries.values() if e.status == "skipped")  # never trained
    run_dir = tmp_path / "cascade"
    status = subprocess.run(
        [sys.executable, "-m", "reward_search.cli", "status", str(run_dir)], capture_output=True, text=True
    )
    assert status.returncode == 0, status.stderr
    line = next(row for row in status.stdout.splitlines() if "gold_mentioned_x2" in row)
    assert (
        "skipped" in line
        and "behaves like gold_mentioned" in line
        and f"[gold_mentioned: done {gold.accuracy:.3f}]" in line
    )
    feedback = (run_dir / "feedback" / "round-2.md").read_text()
    assert "## Not trained: the pre-screen skipped them" in feedback
    assert "gold_mentioned_x2 (round 1): skipped, not trained: novelty: behaves like gold_mentioned" in feedback
    assert f"gold_mentioned scored accuracy {gold.accuracy:.3f} (done)" in feedback
    assert "short_text (round 1): skipped, not trained: filter: AUC 0.64 < min_auc 0.70" in feedback
    transcript = json.loads((run_dir / "proposals" / "round-2" / "call-1.json").read_text())
    prompt = "\n".join(m["content"] for m in transcript["request"]["messages"])
    assert "gold_mentioned_x2 (round 1): skipped, not trained" in prompt  # what the proposer was sent
    from reward_search.analysis.report import build_report

    report = build_report(run_dir, n_resamples=100).with_name("report.md").read_text()
    row = next(r for r in report.splitlines() if r.startswith("| gold_mentioned_x2 |"))
    assert "novelty: behaves like gold_mentioned" in row and f"gold_mentioned: done {gold.accuracy:.3f}" in row
    assert "Candidates: 2 done, 3 skipped." in report
