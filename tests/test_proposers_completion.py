"""Completing reward modules that use the example's helper or an allowed import without copying it.

The recorded replies are a real self-correction sequence of Qwen2.5-Coder-1.5B (round 1, three calls): every
reward failed its probes, five of six with a NameError for `_text` or `re`, and quoting the error did not help.
"""

from __future__ import annotations

import json
from pathlib import Path

from reward_search.candidates.candidate import RewardCandidate
from reward_search.candidates.sandbox import CandidateRunner
from reward_search.candidates.settings import DEFAULT_IMPORTS, CandidatesConfig
from reward_search.candidates.validation import validate_candidate
from reward_search.config import DataConfig
from reward_search.proposers.completion import complete_module, definitions, missing_names
from reward_search.proposers.feedback import build_feedback
from reward_search.proposers.llm import LLMProposer, template
from reward_search.proposers.parsing import parse_reply
from reward_search.proposers.settings import ProposerConfig
from reward_search.task.gsm8k import load_splits
from reward_search.testing.llm import ScriptedCompletion

FIXTURES = Path(__file__).parent / "fixtures" / "llm_replies" / "qwen2.5-coder-1.5b"
KNOWN = definitions(template("example_reward.py.txt"))


def test_the_example_offers_its_helper_and_its_import_but_not_its_reward():
    assert set(KNOWN) == {"_text", "re"}
    assert KNOWN["re"] == "import re" and KNOWN["_text"].startswith("def _text(completion):")


def test_missing_names_ignores_builtins_arguments_locals_and_imports():
    code = (
        "import math\n\n\ndef r(prompts, completions, answer, **kw):\n"
        "    out = [len(c) for c in completions]\n    return [math.log1p(x) + _scale(x) for x in out]\n"
    )
    assert missing_names(code) == {"_scale"}


def test_a_missing_helper_and_import_are_added_once_and_noted():
    code = (
        "def r(prompts, completions, answer, **kw):\n"
        "    return [float(bool(re.search('x', _text(c)))) for c in completions]\n"
    )
    completed, notes = complete_module(code, KNOWN, DEFAULT_IMPORTS)
    assert missing_names(completed) == set()
    assert completed.count("import re") == 1 and completed.count("def _text(") == 1
    assert notes == ["added the missing helper `_text` from the prompt's example", "added the missing `import re`"]
    assert complete_module(completed, KNOWN, DEFAULT_IMPORTS) == (completed, [])  # nothing more to add


def test_unknown_names_disallowed_modules_and_broken_code_are_left_to_validation():
    code = "def r(prompts, completions, **kw):\n    return [os.getpid() + _mystery(c) for c in completions]\n"
    assert complete_module(code, KNOWN, DEFAULT_IMPORTS) == (code, [])  # `os` is not an allowed import
    broken = "def r(prompts, completions:\n    return []\n"
    assert complete_module(broken, KNOWN, DEFAULT_IMPORTS) == (broken, [])


def test_a_helper_that_needs_an_import_brings_it():
    known = {"_digits": "def _digits(text):\n    return re.findall(r'\\d+', text)"}
    code = "def r(prompts, completions, **kw):\n    return [float(len(_digits(c))) for c in completions]\n"
    completed, notes = complete_module(code, known, ["re"])
    assert missing_names(completed) == set() and len(notes) == 2


def _recorded_rewards() -> list[tuple[str, dict]]:
    rewards = []
    for path in sorted(FIXTURES.glob("selfcorrect-r1-c*.json")):
        item = json.loads(path.read_text())
        rewards += [(path.stem, reward) for reward in parse_reply(item["reply"]).items]
    return rewards


def test_recorded_real_rewards_that_failed_on_a_name_pass_once_completed():
    """Validated in the real sandbox: the recorded code fails as it did in the run; completed, no NameError is left."""
    rewards = _recorded_rewards()
    assert len(rewards) == 6
    raw_passed, completed_passed, name_errors, left = 0, 0, 0, []
    with CandidateRunner() as runner:
        for file, reward in rewards:
            raw = validate_candidate(RewardCandidate.from_source(reward["code"]), runner, CandidatesConfig())
            name_errors += any("NameError" in r for r in raw.reasons)
            raw_passed += raw.accepted
            code, notes = complete_module(reward["code"], KNOWN, DEFAULT_IMPORTS)
            verdict = validate_candidate(RewardCandidate.from_source(code), runner, CandidatesConfig())
            completed_passed += verdict.accepted
            left += list(verdict.reasons)
            assert bool(notes) == any("NameError" in r for r in raw.reasons), (file, reward["name"], raw.reasons)
    assert raw_passed == 0 and name_errors == 5  # as measured in the run
    # Completed, 4 of the 5 pass; the fifth then meets its own bug (float() of the solution text), and the reward
    # that gave every probe the same score is still refused: no NameError is left.
    assert completed_passed == 4, left
    assert len(left) == 2 and not any("NameError" in r for r in left)
    assert any("uninformative" in r for r in left) and any("ValueError" in r for r in left)


def test_the_llm_proposer_completes_rewards_and_notes_it_in_the_call_record():
    """The recorded second call, through LLMProposer (litellm's mock_response): the candidates carry `_text`."""
    reply = json.loads((FIXTURES / "selfcorrect-r1-c2.json").read_text())["reply"]
    proposer = LLMProposer(
        ProposerConfig(kind="llm", model="anthropic/claude-sonnet-4-5", seed=1),
        train=load_splits(DataConfig()).train,
        completion=ScriptedCompletion([reply]),
    )
    candidates = proposer.propose(build_feedback([], 1, proposer.config), 2, 1)
    assert len(candidates) == 2 and all("def _text(completion):" in c.source for c in candidates)
    assert all(missing_names(c.source) == set() for c in candidates)
    notes = [n for n in proposer.records[0].notes if "added the missing helper `_text`" in n]
    assert len(notes) == 2 and notes[0].startswith("number_correct_reward: ")
