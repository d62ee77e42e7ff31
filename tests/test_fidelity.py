"""Paper fidelity: the two presets, the reference's prompt text, the proposer's paper request and feedback, the
pinned chat date, the bad-combination error, and a smoke search run with every fidelity switch set."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest

from reward_search.analysis.fidelity import KNOBS, SWITCHES, fidelity_rows, known_flaws
from reward_search.candidates.records import LeaderboardEntry
from reward_search.cli import main
from reward_search.config import load_config
from reward_search.errors import ConfigError
from reward_search.proposers.feedback import build_feedback, paper_feedback_lines
from reward_search.proposers.paper_prompt import (
    feedback_text,
    format_examples,
    paper_examples,
    paper_messages,
    paper_request,
)
from reward_search.proposers.settings import ProposerConfig
from reward_search.task.base import Problem
from reward_search.testing.local_ray import start_local_ray

REPO = Path(__file__).resolve().parent.parent
FIDELITY = REPO / "experiments" / "paper-fidelity.yaml"
PAPER = REPO / "experiments" / "paper.yaml"
SMOKE = REPO / "experiments" / "smoke.yaml"
# sha256 of the reference code's system prompt (search_engine.py), read from its source once
PAPER_SYSTEM_PROMPT_SHA256 = "d6c58e3e130e395a9e6f3b07df4ac37ac3d9fe37b8e9a597a5b815e6d71845a1"


def differing(config) -> set[str]:
    return {row[0] for row in fidelity_rows(config) if row[3] == "differs"}


def test_fidelity_preset_is_the_reference_on_every_knob_the_code_decides():
    config = load_config(FIDELITY)
    assert differing(config) == {"data.dev_size"}  # the one chosen deviation, said in the preset and the table
    assert config.finalize.steps == 300 and config.training.steps == 500 and config.proposer.temperature == 0.6
    assert [r.name for r in config.finalize.recipes] == [
        "top5",
        "top5_full",
        "top3",
        "top7",
        "top10",
        "diverse",
        "correctness",
    ]
    assert known_flaws(config)  # ranking on test is said, in red, in the report


# Resource knobs the GPU-placement work decides for the improved preset (how it fits a GPU, not what it searches)
RESOURCE_KNOBS = {"model.quantization", "training.optimizer", "search.gpus_per_trial", "data.dev_size"}


def test_improved_preset_is_the_same_search_with_one_switch_per_improvement():
    fidelity, improved = load_config(FIDELITY), load_config(PAPER)
    switched = {"training.selection_split", "proposer.feedback", "proposer.examples", "analysis.mcnemar"}
    assert switched <= differing(improved) <= switched | RESOURCE_KNOBS
    assert switched <= set(SWITCHES)
    assert not known_flaws(improved)
    for key in ("proposer.kind", "proposer.model", "finalize.steps", "search.rounds", "data.system_prompt"):
        assert (
            dict((r[0], r[2]) for r in fidelity_rows(fidelity))[key]
            == dict((r[0], r[2]) for r in fidelity_rows(improved))[key]
        )
    assert len({k.key for k in KNOBS}) == len(KNOBS)


def test_test_ranking_without_test_records_is_a_one_line_error(capsys):
    with pytest.raises(ConfigError, match=r"training\.selection_split.*training\.eval_test"):
        load_config(FIDELITY, ["training.eval_test=false"])
    assert load_config(PAPER, ["proposer.feedback=paper"]).proposer.feedback == "paper"  # paper feedback + dev: fine
    assert main(["validate", str(FIDELITY), "--set", "training.eval_test=false"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "training.selection_split" in err and "training.eval_test" in err
    assert "Traceback" not in err


def test_the_paper_system_prompt_is_the_reference_text_byte_for_byte():
    from reward_search.config import DataConfig
    from reward_search.task.gsm8k import GSM8KTask, system_prompt

    text = system_prompt("paper")
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == PAPER_SYSTEM_PROMPT_SHA256
    assert "respond EXACTLY in this format" in text and system_prompt() != text
    messages = GSM8KTask(DataConfig(system_prompt="paper")).messages("What is 2 + 3?")
    assert messages == [{"role": "system", "content": text}, {"role": "user", "content": "What is 2 + 3?"}]


def test_chat_templates_that_print_the_date_are_pinned():
    from transformers import AutoTokenizer

    from reward_search.training.models import CHAT_TEMPLATE_DATE, pin_chat_date, tiny_tokenizer_dir

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir())
    tokenizer.chat_template = (
        '{%- if strftime_now is defined %}{%- set date_string = strftime_now("%d %b %Y") %}'
        '{%- else %}{%- set date_string = "unknown" %}{%- endif %}'
        "Today Date: {{ date_string }}\n{% for m in messages %}{{ m['content'] }}{% endfor %}"
    )
    messages = [{"role": "user", "content": "hi"}]
    unpinned = tokenizer.apply_chat_template(messages, tokenize=False)
    assert "unknown" not in unpinned  # transformers gives templates today's date
    assert pin_chat_date(tokenizer)
    pinned = tokenizer.apply_chat_template(messages, tokenize=False)
    assert pinned.startswith("Today Date: 26 Jul 2024\n") and CHAT_TEMPLATE_DATE == "2024-07-26"
    assert not pin_chat_date(tokenizer)  # nothing left to pin


def _pool(n: int = 200) -> tuple[Problem, ...]:
    return tuple(
        Problem(index=i, question=f"Question {i}?", answer=str(i * 3), solution=f"{i} * 3 = {i * 3}\n#### {i * 3}")
        for i in range(n)
    )


def test_paper_examples_are_20_fixed_items_with_final_numbers_only():
    pool = _pool()
    chosen = paper_examples(pool)
    assert [p.index for p in chosen] == random.Random(3407).sample(range(len(pool)), 20)
    assert paper_examples(pool) == chosen  # the same every round
    text = format_examples(chosen)
    first = chosen[0]
    assert text.startswith(f"[1] Q: {first.question}\nA: {first.answer}\n\n[2] Q: ")
    assert "####" not in text and "*" not in text  # no worked solution
    assert text.count("\nA: ") == 20


def _entry(name: str, round: int, status: str, accuracy: float | None = None) -> LeaderboardEntry:
    return LeaderboardEntry(
        candidate_id=hashlib.sha256(name.encode()).hexdigest()[:16],
        name=name,
        round=round,
        proposer="llm",
        status=status,
        source=f"def {name}(prompts, completions, **kw):\n    return [0.0 for _ in completions]\n",
        accuracy=accuracy,
        f1=None if accuracy is None else 2 * accuracy / (1 + accuracy),
    )


def test_paper_feedback_lists_every_trial_failed_at_zero_and_no_code():
    entries = [
        _entry("alpha", 1, "done", 0.40),
        _entry("beta", 1, "failed"),
        _entry("gamma", 2, "done", 0.55),
        _entry("delta", 2, "crashed"),
        _entry("eps", 2, "rejected"),
        _entry("late", 3, "done", 0.9),
    ]
    feedback = build_feedback(entries, round=3, config=ProposerConfig())
    lines = paper_feedback_lines(feedback)
    assert lines == [
        "- gamma: round=2, F1=0.710, acc=0.550",
        "- alpha: round=1, F1=0.571, acc=0.400",
        "- beta: round=1, F1=0.000, acc=0.000",
        "- delta: round=2, F1=0.000, acc=0.000",
    ]
    text = feedback_text(feedback, "paper")
    assert "def " not in text and "eps" not in text and "late" not in text
    assert "Previously generated rewards (do not duplicate names or semantics):" in text


def test_paper_request_is_one_user_message_with_the_reference_skeleton():
    pool = _pool()
    first_round = build_feedback([], round=1, config=ProposerConfig())
    request = paper_request(pool, first_round, 10)
    assert request.startswith("You are a Language Model generating reward functions")
    assert "Generate exactly 10 diverse reward functions." in request
    assert "Previously generated rewards" not in request  # nothing trained yet
    assert format_examples(paper_examples(pool)) in request
    assert request.endswith("IMPORTANT: Output ONLY the JSON array. No markdown, no backticks, no explanation text.")
    later = build_feedback([_entry("alpha", 1, "done", 0.4)], round=2, config=ProposerConfig())
    messages = paper_messages(pool, later, 10)
    assert [m["role"] for m in messages] == ["user"]
    assert "\n- alpha: round=1, F1=0.571, acc=0.400\n\nExample structure" in messages[0]["content"]
    rich = paper_request(pool, later, 10, feedback_style="rich")
    assert "| rank |" in rich or "alpha" in rich


def test_the_llm_proposer_sends_the_paper_request_in_paper_mode():
    from reward_search.proposers.llm import LLMProposer

    pool = _pool()
    feedback = build_feedback([_entry("alpha", 1, "done", 0.4)], round=2, config=ProposerConfig())
    paper = LLMProposer(ProposerConfig(kind="llm", examples="paper", feedback="paper"), train=pool)
    assert paper.messages(feedback, 4, 2) == paper_messages(pool, feedback, 4)
    mixed = LLMProposer(ProposerConfig(kind="llm", examples="rich", feedback="paper"), train=pool)
    user = mixed.messages(feedback, 4, 2)[-1]["content"]
    assert "- alpha: round=1, F1=0.571, acc=0.400" in user


@pytest.mark.slow
def test_smoke_search_with_every_fidelity_switch_reports_its_fidelity_table(tmp_path):
    """The smoke preset through paper-fidelity's switches, the LLM proposer on canned replies: two rounds, the
    second asked with the paper's feedback; finalize ranks on test; the report lists every switch."""
    import ray

    from reward_search.analysis.report import build_report
    from reward_search.proposers.llm import LLMProposer
    from reward_search.search.driver import run_search
    from reward_search.task.gsm8k import load_splits
    from reward_search.testing.llm import ScriptedCompletion

    def reward(name: str, body: str) -> dict:
        code = f"def {name}(prompts, completions, answer, **kwargs):\n    return [{body} for c in completions]\n"
        return {"name": name, "code": code, "description": name}

    replies = (
        json.dumps(
            [reward("has_solution", "1.0 if '<solution>' in str(c) else 0.0"), reward("short", "-len(str(c)) / 100")]
        ),
        json.dumps(
            [
                reward("has_thinking", "1.0 if '<thinking>' in str(c) else -0.5"),
                reward("digits", "sum(ch.isdigit() for ch in str(c)) / 10"),
            ]
        ),
    )
    config = load_config(
        SMOKE,
        [
            f"run.storage_path={tmp_path}",
            "run.name=fidelity",
            "search.rounds=2",
            "search.candidates_per_round=2",
            "data.system_prompt=paper",
            "eval.primary_mode=strict",
            "training.selection_split=test",
            "training.eval_test=true",
            "training.test_size=8",
            "proposer.kind=llm",
            "proposer.model=groq/moonshotai/kimi-k2-instruct-0905",
            "proposer.temperature=0.6",
            "proposer.examples=paper",
            "proposer.feedback=paper",
            "analysis.mcnemar=paper",
            "finalize.recipes=[{name: top1, kind: top_k, k: 1}, {name: top2, kind: top_k, k: 2}]",
            "finalize.steps=1",
            "finalize.seeds=1",  # the first seed re-run is the best recipe itself: reported, not retrained
            "finalize.baseline=false",  # kept lean: the family under test is the recipes
            "finalize.random_control=false",
        ],
    )
    proposer = LLMProposer(
        config.proposer, train=load_splits(config.data).train, completion=ScriptedCompletion(replies)
    )
    sent: list = []
    original = proposer.messages

    def recording(feedback, n, round):
        sent.append(original(feedback, n, round))
        return sent[-1]

    proposer.messages = recording
    start_local_ray()
    try:
        run_search(config, proposer=proposer, verbose=False)
    finally:
        ray.shutdown()
    run_dir = tmp_path / "fidelity"
    assert json.loads((run_dir / "manifest.json").read_text())["chat_template_date"] == "2024-07-26"
    assert [m["role"] for m in sent[0]] == ["user"] and "Previously generated rewards" not in sent[0][0]["content"]
    assert "Previously generated rewards" in sent[-1][0]["content"] and "round=1, F1=" in sent[-1][0]["content"]
    final = json.loads((run_dir / "finalize.json").read_text())
    assert final["selection_split"] == "test" and final["mcnemar"] == "paper"
    jobs = {job["name"]: job["result"] for job in final["jobs"]}
    best = final["best_recipe"]
    assert jobs[f"{best}@seed3407"]["same_job_as"] == best  # identical job: reported, not trained twice
    assert jobs["top2"]["test_n"] == jobs["top2"]["selection_n"] == 4  # smoke ranks on 4 test questions
    assert jobs["top2"]["test_accuracy"] == jobs["top2"]["selection_accuracy"]
    page = build_report(run_dir, n_resamples=200)
    markdown = (page.parent / "report.md").read_text(encoding="utf-8")
    for key in SWITCHES:
        assert f"| {key} |" in markdown, key
    assert "Known flaw" in markdown and "the ensemble recipes only" in markdown
    assert "No finalize job has test records" not in markdown
