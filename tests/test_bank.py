"""The rollout bank and the probes drawn from it: evasions caught through `rewards check`, verdicts that repeat,
the pre-screen, and a bank that does not fit refused or rebuilt."""

from __future__ import annotations

import dataclasses
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from reward_search import io
from reward_search.candidates.bank import BankMismatch, load_bank, shipped_bank_path
from reward_search.candidates.prescreen import auc, predicted_signal
from reward_search.candidates.probes import probe_batches
from reward_search.candidates.sandbox import CandidateRunner
from reward_search.candidates.settings import BankConfig, CandidatesConfig, ProbeConfig, SandboxConfig
from reward_search.candidates.validation import validate_source

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ROOT / "tests" / "corpus" / "hostile"
EVASIONS = (
    "evasion_grouping",
    "evasion_system_prompt",
    "evasion_fixed_questions",
    "evasion_call_count_bomb",
    "evasion_padded_solution",
    "evasion_format_only_inversion",
    "evasion_hidden_random_hash",
)
CONFIG = CandidatesConfig(sandbox=SandboxConfig(call_timeout_s=5.0, load_timeout_s=5.0))
# A majority vote over each prompt's group whose tie-break is the first answer seen: order-dependent by design.
MAJORITY = """
import re
from collections import Counter


def majority_vote(prompts, completions, answer, **kwargs):
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    found = [(re.findall(r"-?\\d+", t) or [""])[-1] for t in texts]
    keys = [str(p) for p in prompts]
    out = []
    for i, (guess, gold) in enumerate(zip(found, answer, strict=True)):
        votes = Counter(found[j] for j in range(len(found)) if keys[j] == keys[i])
        top = max(votes.values())
        winner = next(f for j, f in enumerate(found) if keys[j] == keys[i] and votes[f] == top)
        out.append(float(guess == gold) + (0.5 if guess == winner else 0.0))
    return out
"""


def cli(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "reward_search.candidates.cli", "rewards", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=ROOT)


def test_the_shipped_bank_holds_decisive_pairs_in_the_training_format():
    bank = load_bank(shipped_bank_path())
    assert bank.applicable() is None and len(bank.groups) >= 8
    for group in bank.groups:
        tagged = {row.correct for row in group if row.format == "tags"}
        assert tagged == {True, False}  # a correct and a wrong completion in the format training rewards
        assert len({json.dumps(row.prompt) for row in group}) == 1
        assert group[0].prompt[0]["role"] == "system" and group[0].prompt[-1]["role"] == "user"
    assert any(not row.synthetic for row in bank.rows)  # the policy's own samples, not only the gold


@pytest.mark.parametrize("name", EVASIONS)
def test_each_evasion_is_rejected_by_rewards_check(name):
    done = cli("check", str(HOSTILE / f"{name}.py"), "--json")
    verdict = json.loads(done.stdout)
    assert done.returncode == 1 and not verdict["accepted"], verdict
    assert verdict["stage"] == "probe" and verdict["probe"]["calls"] >= CandidatesConfig().reprobe_every


def test_trl_think_format_reward_is_accepted_in_chat_form():
    from trl.rewards import think_format_reward

    source = "import re\n\n\n" + inspect.getsource(think_format_reward)
    with CandidateRunner(CONFIG.sandbox, CONFIG.policy) as runner:
        verdict = validate_source(source, runner, CONFIG)
    assert verdict.accepted, verdict.reasons


def test_an_order_dependent_tie_break_gets_one_verdict_in_ten_checks():
    with CandidateRunner(CONFIG.sandbox, CONFIG.policy) as runner:
        verdicts = [validate_source(MAJORITY, runner, CONFIG) for _ in range(10)]
    assert len({(v.accepted, v.reasons) for v in verdicts}) == 1, [v.reasons for v in verdicts]
    behaviour = [{k: x for k, x in v.probe["prescreen"].items() if k != "ms_per_completion"} for v in verdicts]
    assert all(b == behaviour[0] for b in behaviour)  # the same signature, AUC and signal every time
    bank = load_bank(shipped_bank_path())
    one, two = (probe_batches(ProbeConfig(seed=s), bank, "id", 25) for s in (1, 2))
    assert [p.text for b in one for p in b.probes] != [p.text for b in two for p in b.probes]  # the secret draws
    for calls in (one, two):
        assert len(calls) >= 25 and [b.check for b in calls[-2:]] == ["fresh", "fresh"]
        for batch in calls:  # whole groups, consecutive, as TRL sends them
            groups = [p.group for p in batch.probes]
            assert groups == sorted(groups, key=groups.index)


def test_anti_correct_is_decided_on_decisive_pairs_of_one_format():
    # Pays wrong answers only inside the solution tags: every decisive pair there prefers the wrong answer.
    source = (HOSTILE / "evasion_format_only_inversion.py").read_text()
    with CandidateRunner(CONFIG.sandbox, CONFIG.policy) as runner:
        verdict = validate_source(source, runner, CONFIG)
    assert not verdict.accepted and "anti-correct" in verdict.reasons[0] and "format tags" in verdict.reasons[0]
    decisive, wrong = verdict.probe["pairs_by_format"]["tags"]
    assert decisive >= 8 and wrong == decisive
    assert verdict.probe["prescreen"]["auc"] < 0.1


def test_prescreen_measures():
    assert auc([1.0, 1.0], [0.0, 1.0]) == 0.75 and auc([], [1.0]) is None
    assert predicted_signal([[1.0, 1.0], [0.0, 2.0], [3.0, 3.0, 3.1]]) == pytest.approx(2 / 3)


def _rewritten(tmp_path: Path, change) -> Path:
    import pyarrow.parquet as pq

    rows = [change(dict(r)) for r in pq.read_table(shipped_bank_path()).to_pylist()]
    path = tmp_path / "bank.parquet"
    io.write_parquet(path, rows)
    return path


def test_a_bank_without_wrong_completions_makes_the_prescreen_not_applicable(tmp_path):
    path = _rewritten(tmp_path, lambda r: {**r, "correct": True})
    config = dataclasses.replace(CONFIG, bank=BankConfig(path=str(path)))
    honest = (ROOT / "tests" / "corpus" / "benign" / "regex_solution_match.py").read_text()
    with CandidateRunner(config.sandbox, config.policy) as runner:
        verdict = validate_source(honest, runner, config)
    assert verdict.probe["prescreen"] == {
        "applicable": False,
        "reason": "the bank bank.parquet has no wrong completion for any question",
    }
    done = cli(
        "check",
        str(ROOT / "tests" / "corpus" / "benign" / "regex_solution_match.py"),
        "--set",
        f"candidates.bank.path={path}",
    )
    assert "pre-screen: not applicable (the bank bank.parquet has no wrong completion for any question)" in done.stdout


def test_a_bank_of_another_fingerprint_is_refused_in_one_line(tmp_path):
    path = _rewritten(tmp_path, lambda r: r)
    with pytest.raises(BankMismatch):
        load_bank(path, "ab" * 32)
    done = cli(
        "check",
        str(HOSTILE / "constant.py"),
        "--set",
        f"candidates.bank.path={path}",
        "--set",
        "candidates.bank.fingerprint=" + "ab" * 32,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "rebuild it" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_tiny_model_bank_is_built_cached_linked_and_rebuilt_on_a_new_fingerprint(tmp_path, monkeypatch):
    from reward_search.config import load_config
    from reward_search.training.bank import cache_path, ensure_bank, run_candidates_config

    monkeypatch.setenv("REWARD_SEARCH_CACHE", str(tmp_path / "cache"))
    overrides = ["candidates.bank.questions=2", "training.max_completion_length=8"]
    config = load_config(ROOT / "experiments" / "smoke.yaml", overrides)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    bank = ensure_bank(config, run_dir, progress=False)
    assert (run_dir / "bank.parquet").resolve() == Path(bank.path).resolve()
    assert Path(bank.path).parent == tmp_path / "cache" / "banks" and len(bank.groups) == 2
    assert all(len(g) == config.training.generations_per_prompt for g in bank.groups)
    before = Path(bank.path).stat().st_mtime_ns
    assert ensure_bank(config, progress=False).fingerprint == bank.fingerprint  # reused from the cache
    assert Path(bank.path).stat().st_mtime_ns == before
    hotter = load_config(ROOT / "experiments" / "smoke.yaml", [*overrides, "training.temperature=0.7"])
    # Another sampling setting is another cache file; a bank file named explicitly but built for another setting
    # is rebuilt in place, never reused.
    assert cache_path(_spec(hotter)) != cache_path(_spec(config)) == Path(bank.path)
    pinned_file = tmp_path / "pinned.parquet"
    pinned_file.write_bytes(Path(bank.path).read_bytes())
    pinned = dataclasses.replace(hotter.candidates.bank, path=str(pinned_file))
    hotter = dataclasses.replace(hotter, candidates=dataclasses.replace(hotter.candidates, bank=pinned))
    rebuilt = ensure_bank(hotter, run_dir, progress=False)
    assert rebuilt.fingerprint == _spec(hotter).fingerprint != bank.fingerprint
    assert load_bank(pinned_file).fingerprint == rebuilt.fingerprint
    assert (run_dir / "bank.parquet").resolve() == pinned_file.resolve()
    first, again = (run_candidates_config(config, run_dir, progress=False) for _ in range(2))
    assert first.probes.seed == again.probes.seed is not None  # one secret per run, kept in the run directory
    assert first.bank.fingerprint == bank.fingerprint and first.bank.path == bank.path


def _spec(config):
    from reward_search.task.registry import get_task
    from reward_search.training.bank import bank_spec

    task = get_task(config)
    return bank_spec(config, task, task.load_splits().manifest.splits["train"].sha256)


def test_the_prescreen_reaches_the_record_and_the_proposer_feedback():
    from reward_search.candidates.records import LeaderboardEntry
    from reward_search.proposers.feedback import build_feedback

    source = (ROOT / "tests" / "corpus" / "benign" / "regex_solution_match.py").read_text()
    with CandidateRunner(CONFIG.sandbox, CONFIG.policy) as runner:
        verdict = validate_source(source, runner, CONFIG)
    record = verdict.probe["prescreen"]
    bank = load_bank(shipped_bank_path())
    assert record["applicable"] and len(record["signature"]) == bank.size and record["ms_per_completion"] > 0
    assert record["auc"] > 0.9 and 0 < record["signal"] <= 1 and record["own_signal"] == 1.0  # every group varies
    entry = LeaderboardEntry(
        "c1", verdict.name, 1, "llm", "done", source, accuracy=0.5, correct=5, n=10, probe=verdict.probe
    )
    assert entry.prescreen == record
    text = build_feedback([entry], round=2).render()
    assert f"Pre-screen: AUC {record['auc']:.2f} on the policy's rollouts, signal {record['signal']:.0%}" in text
