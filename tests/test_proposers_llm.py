"""The LLM proposer through litellm's `mock_response` (no network): parsing, retries, cost, budget, secrets."""

from __future__ import annotations

import json
import pickle
import re

import pytest

from reward_search.candidates.records import LeaderboardEntry
from reward_search.candidates.sandbox import CandidateRunner
from reward_search.candidates.validation import validate_source
from reward_search.config import DataConfig
from reward_search.proposers.base import BudgetExhausted, ProposerError, spend_text
from reward_search.proposers.feedback import build_feedback
from reward_search.proposers.llm import LLMProposer, import_litellm, sample_qa
from reward_search.proposers.parsing import parse_reply
from reward_search.proposers.registry import make_proposer
from reward_search.proposers.settings import ProposerConfig
from reward_search.task.gsm8k import load_splits
from reward_search.testing.llm import ScriptedCompletion

MODEL = "anthropic/claude-sonnet-4-5"  # in litellm's local price list, so mock calls have a known cost
SECRET = "sk-ant-api03-THISISNOTAREALKEY0123456789"


def _reward(name: str, body: str) -> dict[str, str]:
    code = (
        "import re\n\n\n"
        "def _text(c):\n"
        "    return c if isinstance(c, str) else ''.join(m.get('content') or '' for m in c)\n\n\n"
        f"def {name}(prompts, completions, answer, **kwargs):\n"
        "    out = []\n"
        "    for c, gold in zip(completions, answer):\n"
        "        t = _text(c)\n"
        f"        {body}\n"
        "    return out\n"
    )
    return {"name": name, "code": code, "description": f"{name}: a test reward"}


GOOD = [
    _reward("gold_in_solution", "out.append(2.0 if f'<solution>{gold}</solution>' in t else 0.0)"),
    _reward("has_thinking", "out.append(1.0 if '<thinking>' in t and '</thinking>' in t else 0.0)"),
]
FENCED = [_reward("mentions_gold", "out.append(1.0 if str(gold) in t else -0.5)")]
WRAPPED = [_reward("short_and_right", "out.append((1.0 if str(gold) in t else 0.0) - len(t) / 100000)")]
MALFORMED = "I think a good reward would check the answer. {name: check, code: ???"


def _hostile(marker) -> dict[str, str]:
    code = (
        "import os\n"
        f"open({str(marker)!r}, 'w').write('executed')\n\n"
        "def sneaky(prompts, completions, answer, **kwargs):\n"
        "    os.system('id')\n"
        "    return [1.0 for _ in completions]\n"
    )
    return {"name": "sneaky", "code": code, "description": "helpful, honestly"}


def _replies(marker):
    litellm = import_litellm()

    return [
        litellm.RateLimitError(f"slow down (key {SECRET})", llm_provider="anthropic", model=MODEL),
        json.dumps(GOOD),
        "Here are my rewards:\n```json\n" + json.dumps(FENCED, indent=2) + "\n```\nThey should help a lot.",
        json.dumps({"rewards": WRAPPED}),
        MALFORMED,
        json.dumps([_hostile(marker), GOOD[0]]),  # GOOD[0] again: a duplicate of an earlier candidate
    ]


@pytest.fixture(scope="module")
def train():
    return load_splits(DataConfig()).train


@pytest.fixture()
def secret_env(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)


def _proposer(train, replies, slept=None, **config) -> LLMProposer:
    settings = {"model": MODEL, "seed": 1, "backoff_s": 0.5, **config}
    return LLMProposer(
        ProposerConfig(kind="llm", **settings),
        train=train,
        completion=ScriptedCompletion(replies),
        sleep=(slept.append if slept is not None else lambda s: None),
    )


def test_round_fills_despite_rate_limit_malformed_hostile_and_duplicate(train, tmp_path, secret_env):
    """A driver-like loop: propose, validate in the sandbox, ask again for replacements until 4 are accepted."""
    marker = tmp_path / "executed.txt"
    slept: list[float] = []
    proposer = _proposer(train, _replies(marker), slept)
    feedback = build_feedback([], 1)
    accepted, rejected, batches = [], [], []
    with CandidateRunner() as runner:
        while len(accepted) < 4 and len(batches) < 6:
            batch = proposer.propose(feedback, 4 - len(accepted), round=1)
            batches.append([c.name for c in batch])
            assert not marker.exists()  # the proposer only parses candidate code
            for candidate in batch:
                verdict = validate_source(candidate.source, runner, name=candidate.name)
                (accepted if verdict.accepted else rejected).append(verdict)
    assert not marker.exists()  # validation rejects the hostile module before anything runs it
    assert batches == [
        ["gold_in_solution", "has_thinking"],  # first call: rate-limited once, then the good array
        ["mentions_gold"],  # fenced block with prose around it
        ["short_and_right"],  # wrapping object
    ]
    assert [v.name for v in accepted] == ["gold_in_solution", "has_thinking", "mentions_gold", "short_and_right"]
    assert rejected == []
    assert len(slept) == 1 and 0.25 <= slept[0] <= 0.5  # one backoff (jittered 50-100% of 0.5 s)

    usage = proposer.usage()
    assert usage.calls == 3 and usage.retries == 1 and usage.candidates == 4
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0 and usage.cost_usd > 0
    first = proposer.records[0]
    assert first.attempts == 2 and first.ok and first.cost_known and first.latency_s >= 0

    # The remaining replies: malformed (no candidates, an error recorded), then hostile + duplicate.
    assert proposer.propose(feedback, 2, round=1) == []
    assert "malformed reply" in proposer.records[-1].notes[0] and "malformed reply" in proposer.usage().errors[-1]
    last = proposer.propose(feedback, 2, round=1)
    assert [c.name for c in last] == ["sneaky"]
    assert any("same code as an earlier candidate" in note for note in proposer.records[-1].notes)
    with CandidateRunner() as runner:
        verdict = validate_source(last[0].source, runner, name=last[0].name)
    assert not verdict.accepted and verdict.stage == "policy"
    assert any("'os'" in reason for reason in verdict.reasons)
    assert not marker.exists()

    recorded = json.dumps(proposer.state()) + json.dumps(proposer.usage().to_dict())
    assert SECRET not in recorded and "[redacted]" in recorded
    assert all(c.origin.proposer == "llm" and c.origin.round == 1 for c in last)


def test_budget_cap_stops_calls(train):
    replies = [json.dumps([GOOD[0]]), json.dumps([GOOD[1]]), json.dumps(FENCED)]
    proposer = _proposer(train, replies, budget_usd=0.0005)
    feedback = build_feedback([], 1)
    proposer.propose(feedback, 1, round=1)
    assert 0 < proposer.spent_usd < 0.0005
    proposer.propose(feedback, 1, round=1)
    assert proposer.spent_usd >= 0.0005
    with pytest.raises(BudgetExhausted, match="budget_usd"):
        proposer.propose(feedback, 1, round=1)
    assert len(proposer.records) == 2  # no third request was made
    resumed = _proposer(train, replies, budget_usd=0.0005)
    resumed.load_state(json.loads(json.dumps(proposer.state())))
    with pytest.raises(BudgetExhausted):  # spending survives a restart
        resumed.propose(feedback, 1, round=1)


def test_unknown_model_cost_is_unknown_unless_priced(train):
    reply = [json.dumps([GOOD[0]])]
    unknown = _proposer(train, reply, model="hosted_vllm/my-model", api_base="http://127.0.0.1:9/v1")
    unknown.propose(build_feedback([], 1), 1, round=1)
    assert unknown.records[0].cost_usd is None and not unknown.records[0].cost_known  # unknown, not $0
    assert unknown.usage().cost_usd == 0  # the budget counts known dollars only
    assert unknown.usage().unpriced_calls == 1  # and what status and the report show says "unknown", not $0
    assert spend_text(unknown.usage().cost_usd, unknown.usage().unpriced_calls).startswith("unknown (1 call ")
    assert spend_text(0.5, 2) == "$0.5000 + unknown (2 calls to an unpriced model)"
    assert spend_text(0.0) == "$0.0000"
    priced = _proposer(train, reply, model="hosted_vllm/my-model", input_usd_per_mtok=1.0, output_usd_per_mtok=2.0)
    priced.propose(build_feedback([], 1), 1, round=1)
    record = priced.records[0]
    assert record.cost_usd == pytest.approx((record.prompt_tokens + 2 * record.completion_tokens) / 1e6)
    assert priced.usage().unpriced_calls == 0


def test_retries_run_out_without_an_exception_and_auth_errors_raise(train, secret_env):
    litellm = import_litellm()

    errors = [litellm.InternalServerError("boom", llm_provider="anthropic", model=MODEL) for _ in range(3)]
    proposer = _proposer(train, errors, max_retries=2)
    assert proposer.propose(build_feedback([], 1), 2, round=1) == []
    assert proposer.records[0].attempts == 3 and "InternalServerError" in proposer.records[0].error
    assert proposer.usage().failed_calls == 1

    denied = litellm.AuthenticationError(f"invalid x-api-key {SECRET}", llm_provider="anthropic", model=MODEL)
    with pytest.raises(ProposerError) as caught:
        _proposer(train, [denied]).propose(build_feedback([], 1), 2, round=1)
    assert SECRET not in str(caught.value)


def test_prompt_has_qa_constraints_example_and_feedback(train):
    entry = LeaderboardEntry(
        "f" * 16, "best_reward", 1, "llm", "done", "def best_reward(prompts, completions, answer, **kw):\n    ...\n",
        accuracy=0.41, f1=0.58, n=50, ci_low=0.3, ci_high=0.5,
    )  # fmt: skip
    rejected = LeaderboardEntry("e" * 16, "bad_one", 1, "llm", "rejected", "import os", reasons=["policy: import"])
    proposer = _proposer(train, [], qa_examples=2)
    messages = proposer.messages(build_feedback([entry, rejected], 2), 5, round=2)
    assert [m["role"] for m in messages] == ["system", "user"]
    text = messages[1]["content"]
    for problem in sample_qa(train, 2, seed=1, round=2):
        assert problem.question.strip() in text and f"Gold answer: {problem.answer}" in text
    assert re.search(r"<<[\d.+\-*/=]+>>", text) is None  # calculator annotations stripped from the solutions
    assert "def <name>(prompts, completions, answer, **kwargs) -> list[float]" in text
    assert "Imports allowed: re, math, statistics" in text and "Deterministic" in text and "No I/O" in text
    assert "def solution_number_reward(" in text  # the example reward
    assert "| 1 | best_reward | 1 | 0.410 |" in text and "bad_one (round 1): policy: import" in text
    assert "check_answer" in text and "Write 5 new reward functions for round 2" in text
    assert [p.index for p in sample_qa(train, 2, 1, 3)] != [p.index for p in sample_qa(train, 2, 1, 2)]
    assert proposer.messages(build_feedback([entry], 2), 5, round=2) == proposer.messages(
        build_feedback([entry], 2), 5, round=2
    )


def test_names_are_made_unique_and_never_shadow_base_rewards(train):
    clash = [_reward("check_answer", "out.append(1.0)"), _reward("gold_in_solution", "out.append(0.5)")]
    proposer = _proposer(train, [json.dumps([GOOD[0]]), json.dumps(clash)])
    feedback = build_feedback([], 1)
    proposer.propose(feedback, 1, round=1)
    renamed = proposer.propose(feedback, 2, round=1)
    assert [c.name for c in renamed] == ["check_answer_variant", "gold_in_solution_2"]
    assert all(f"def {c.name}(" in c.source for c in renamed)


def test_make_proposer_builds_a_picklable_llm_proposer(train):
    proposer = make_proposer(
        ProposerConfig(kind="llm", model=MODEL), train=train, completion=ScriptedCompletion([json.dumps(GOOD)])
    )
    assert isinstance(proposer, LLMProposer)
    clone = pickle.loads(pickle.dumps(proposer))
    assert [c.name for c in clone.propose(build_feedback([], 1), 2, round=1)] == ["gold_in_solution", "has_thinking"]


@pytest.mark.parametrize(
    ("reply", "names"),
    [
        (json.dumps(GOOD), ["gold_in_solution", "has_thinking"]),
        ("Sure!\n" + json.dumps(GOOD) + "\nHope this helps.", ["gold_in_solution", "has_thinking"]),
        ("```\n" + json.dumps(FENCED) + "\n```", ["mentions_gold"]),
        (json.dumps({"reward_functions": GOOD[:1]}), ["gold_in_solution"]),
        (json.dumps(GOOD[0]), ["gold_in_solution"]),  # a single object
        (json.dumps(GOOD)[:-1] + ",]", ["gold_in_solution", "has_thinking"]),  # trailing comma
        ('[{"name": "raw", "code": "def raw(prompts, completions, answer, **kw):\n    return [1.0]\n"}]', ["raw"]),
    ],
)
def test_parse_reply_shapes(reply, names):
    parsed = parse_reply(reply)
    assert [item["name"] for item in parsed.items] == names and parsed.errors == []


def test_parse_reply_keeps_good_objects_and_reports_bad_ones():
    parsed = parse_reply(json.dumps([GOOD[0], {"name": "nocode"}, "text"]))
    assert [item["name"] for item in parsed.items] == ["gold_in_solution"]
    assert len(parsed.errors) == 2
    assert parse_reply("").errors == ["empty reply"]
    assert parse_reply("no json here").items == []


def test_structured_output_where_litellm_reports_it_else_fenced_blocks(train):
    """`auto` asks for JSON through a JSON schema when litellm says the model supports it, else fenced blocks."""
    litellm = import_litellm()
    sent: list[dict] = []

    def completion(**kwargs):
        sent.append(kwargs)
        return litellm.completion(**kwargs)

    feedback = build_feedback([], 1)
    for model, fmt in ((MODEL, "auto"), ("openai/qwen-coder", "auto"), (MODEL, "fenced")):
        config = ProposerConfig(kind="llm", model=model, api_base=None, reply_format=fmt)
        proposer = LLMProposer(config, train=train, completion=ScriptedCompletion([json.dumps(GOOD)], completion))
        assert [c.name for c in proposer.propose(feedback, 2, round=1)] == ["gold_in_solution", "has_thinking"]
    structured, fenced_small, fenced_forced = sent
    schema = structured["response_format"]["json_schema"]["schema"]
    assert structured["response_format"]["type"] == "json_schema" and schema["required"] == ["rewards"]
    assert '{"rewards": [{"name"' in structured["messages"][1]["content"]
    for kwargs in (fenced_small, fenced_forced):
        assert (
            "response_format" not in kwargs and "### Reward: <entry function name>" in kwargs["messages"][1]["content"]
        )


def test_planted_proposer_forwards_every_hook_and_hides_planted_verdicts(train, tmp_path):
    """The hooks are Proposer methods: the wrapper forwards each explicitly, and base proposers answer no-ops."""
    from reward_search.proposers.planted import PlantedProposer, read_planted
    from reward_search.proposers.random import RandomProposer

    planted_file = tmp_path / "constant.py"
    planted_file.write_text("def constant(prompts, completions, **kwargs):\n    return [1.0 for _ in completions]\n")
    inner = _proposer(train, [json.dumps(GOOD)])
    proposer = PlantedProposer(inner, read_planted([str(planted_file)]))
    proposer.attach_run_dir(tmp_path / "run")
    assert inner.transcripts is not None  # forwarded: the LLM's transcripts go under the run directory
    batch = proposer.propose(build_feedback([], 1), 3, round=1)
    assert [c.name for c in batch] == ["constant", "gold_in_solution", "has_thinking"]
    proposer.note_verdicts(1, [(c.id, c.name, False, ["probe: constant"]) for c in batch])
    assert inner.records[0].rejected == 2  # the planted candidate's verdict is never told to the LLM
    assert not any("constant was rejected" in p for p in inner._problems[1])
    assert proposer.round_summary(1) == inner.round_summary(1) == "2 rewards rejected"
    assert (tmp_path / "run" / "proposals").is_dir()

    plain = RandomProposer(ProposerConfig(kind="random"), pool=())
    assert plain.note_verdicts(1, []) is None and plain.attach_run_dir(tmp_path) is None
    assert plain.round_summary(1) == "no candidate passed validation"
