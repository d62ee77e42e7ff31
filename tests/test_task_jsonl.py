"""`data.source: jsonl`, a user's own task behind the Task seam: loading, bad input (one line naming the file, the
line and the field; exit 2), the dev and test carve, and a smoke search whose report and proposer prompt name the
task instead of GSM8K."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reward_search.cli import main
from reward_search.config import DataConfig, load_config
from reward_search.errors import ConfigError, DataError
from reward_search.task import get_task
from reward_search.task.splits import question_key
from reward_search.testing.local_ray import start_local_ray

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "experiments" / "smoke.yaml"


def arithmetic(count: int, start: int = 0) -> list[dict]:
    """`count` distinct addition problems with numeric answers."""
    return [
        {"question": f"What is {a} plus {a + 7}?", "answer": 2 * a + 7, "solution": f"{a} + {a + 7} = {2 * a + 7}"}
        for a in range(start, start + count)
    ]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def jsonl_config(train: Path, **fields) -> DataConfig:
    return DataConfig(source="jsonl", train_file=str(train), **fields)


def keys(problems) -> set[str]:
    return {question_key(p.question) for p in problems}


# --- loading ----------------------------------------------------------------------------------------------------


def test_rows_load_with_numeric_answers_as_text_and_an_optional_solution(tmp_path):
    rows = [
        {"question": "What is 2 plus 3?", "answer": 5, "solution": "2 + 3 = 5"},
        {"question": "Half of 5?", "answer": 2.5},
        {"question": "Thousands?", "answer": "9,492"},
        *arithmetic(20),
    ]
    train = write_jsonl(tmp_path / "mine.jsonl", rows)
    task = get_task(jsonl_config(train))
    assert task.name == "jsonl" and task.display_name == "mine"
    splits = task.load_splits()
    everything = {p.question: p for p in (*splits.train, *splits.dev, *splits.test)}
    assert everything["What is 2 plus 3?"].answer == "5" and everything["What is 2 plus 3?"].solution == "2 + 3 = 5"
    assert everything["Half of 5?"].answer == "2.5" and everything["Half of 5?"].solution == ""
    assert everything["Thousands?"].answer == "9,492"
    assert splits.manifest.task == "jsonl" and splits.manifest.display_name == "mine"
    assert splits.manifest.location == str(train.resolve())
    assert task.grade("<thinking>x</thinking><solution>9492</solution>", "9,492")["correct"]


def test_the_task_takes_its_name_and_prompt_from_the_config(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", arithmetic(10))
    default = get_task(jsonl_config(train, name="Arithmetic drills"))
    assert default.display_name == "Arithmetic drills"
    assert "<solution>" in default.system_prompt() and "GSM8K" not in default.system_prompt()
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Add the numbers. Answer inside <solution></solution>.\n", encoding="utf-8")
    own = get_task(jsonl_config(train, prompt_file=str(prompt)))
    assert own.messages("What is 1 plus 1?") == [
        {"role": "system", "content": "Add the numbers. Answer inside <solution></solution>."},
        {"role": "user", "content": "What is 1 plus 1?"},
    ]
    with pytest.raises(DataError, match=r"data\.prompt_file: .*missing\.txt does not exist"):
        get_task(jsonl_config(train, prompt_file=str(tmp_path / "missing.txt"))).system_prompt()


def test_get_task_takes_the_data_config_or_the_whole_experiment_config(tmp_path):
    train = write_jsonl(tmp_path / "sums.jsonl", arithmetic(10))
    config = load_config(SMOKE, ["data.source=jsonl", f"data.train_file={train}"])
    assert get_task(config).name == get_task(config.data).name == "jsonl"
    assert get_task(load_config(SMOKE)).display_name == "GSM8K"


def test_the_llm_proposer_prompt_names_the_task_it_is_given(tmp_path):
    from reward_search.proposers.feedback import build_feedback
    from reward_search.proposers.registry import make_proposer
    from reward_search.proposers.settings import ProposerConfig

    train = write_jsonl(tmp_path / "sums.jsonl", arithmetic(30))
    task = get_task(jsonl_config(train, name="Sums"))
    config = ProposerConfig(kind="llm", model="anthropic/claude-sonnet-4-5")
    proposer = make_proposer(config, task=task, train=task.load_splits().train)
    text = "\n".join(m["content"] for m in proposer.messages(build_feedback([], 1), 2, 1))
    assert "on Sums: problems whose answer is a number" in text and "search on Sums" in text
    assert task.system_prompt() in text and "GSM8K" not in text and "grade-school" not in text
    default = make_proposer(config).messages(build_feedback([], 1), 2, 1)  # no task given: GSM8K, as before
    assert "on GSM8K: grade-school math word problems" in default[0]["content"]


# --- dev and test carve -----------------------------------------------------------------------------------------


def test_dev_and_test_are_carved_from_train_seeded_and_disjoint(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", arithmetic(100))
    config = jsonl_config(train, dev_size=10, dev_seed=7)
    splits = get_task(config).load_splits()
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (70, 10, 20)  # test: a fifth of train
    assert not keys(splits.train) & keys(splits.dev) and not keys(splits.dev) & keys(splits.test)
    assert not keys(splits.train) & keys(splits.test)
    again = get_task(config).load_splits()
    assert again.manifest == splits.manifest  # seeded: the same carve every time
    other = get_task(jsonl_config(train, dev_size=10, dev_seed=8)).load_splits()
    assert keys(other.dev) != keys(splits.dev)


def test_given_test_and_dev_files_are_used_and_their_questions_dropped_from_the_pool(tmp_path):
    rows = arithmetic(40)
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    test = write_jsonl(tmp_path / "test.jsonl", [*arithmetic(5, start=100), rows[0]])  # one question overlaps
    splits = get_task(jsonl_config(train, test_file=str(test), dev_size=4)).load_splits()
    assert len(splits.test) == 6 and len(splits.dev) == 4 and len(splits.train) == 35
    assert splits.manifest.removed_overlap == 1
    dev_rows = [*arithmetic(3, start=200), rows[1]]
    dev = write_jsonl(tmp_path / "dev.jsonl", dev_rows)
    both = get_task(jsonl_config(train, test_file=str(test), dev_file=str(dev))).load_splits()
    assert keys(both.dev) == {question_key(row["question"]) for row in dev_rows}
    assert len(both.dev) == 4 and len(both.train) == 38 and both.manifest.removed_overlap == 2


# --- bad input --------------------------------------------------------------------------------------------------

BAD_ROWS = [
    ('{"answer": 3}', 2, '"question" is missing'),
    ('{"question": "What is 1 plus 2?"}', 2, '"answer" is missing'),
    ('{"question": "What is 1 plus 2?", "answer": "three"}', 2, '"answer" must be a number'),
    ('{"question": "What is 1 plus 2?", "answer": true}', 2, '"answer" must be a number'),
    ('{"question": "What is 1 plus 2?", "answer": 3, "solution": 3}', 2, '"solution" must be a string'),
    ('{"question": "What is 1 plus 2?", "answer": 3', 2, "invalid JSON"),
    ("[1, 2]", 2, "expected one JSON object per line"),
]


@pytest.mark.parametrize(("bad", "line", "problem"), BAD_ROWS)
def test_a_bad_row_names_the_file_the_line_and_the_field(tmp_path, bad, line, problem):
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps(arithmetic(1)[0]) + "\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        get_task(jsonl_config(train)).load_splits()
    message = str(caught.value)
    assert message.startswith(f"{train}:{line}: ") and problem in message and "\n" not in message


def test_an_empty_file_and_a_missing_file_are_one_line_each(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.jsonl:1: the file is empty; expected one JSON object per line"):
        get_task(jsonl_config(empty)).load_splits()
    train = write_jsonl(tmp_path / "train.jsonl", arithmetic(10))
    with pytest.raises(DataError, match=r"data\.test_file: .*nowhere\.jsonl does not exist"):
        get_task(jsonl_config(train, test_file=str(tmp_path / "nowhere.jsonl"))).load_splits()
    tiny = write_jsonl(tmp_path / "tiny.jsonl", arithmetic(2))
    with pytest.raises(DataError, match=r"tiny\.jsonl: 2 item\(s\); with no data\.test_file at least 3"):
        get_task(jsonl_config(tiny)).load_splits()


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.train_file: required when data\.source is 'jsonl'"):
        load_config(SMOKE, ["data.source=jsonl"])
    with pytest.raises(ConfigError, match=r"data\.test_file: only used with data\.source: jsonl"):
        load_config(SMOKE, [f"data.test_file={tmp_path / 'test.jsonl'}"])


def test_the_data_command_names_the_task(tmp_path, capsys):
    train = write_jsonl(tmp_path / "sums.jsonl", arithmetic(30))
    assert main(["data", str(SMOKE), "--set", "data.source=jsonl", "--set", f"data.train_file={train}"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"task sums (jsonl) from {train.resolve()}") and "dev       20 questions" in out


def test_the_cli_prints_one_line_and_exits_2(tmp_path, capsys):
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps(arithmetic(1)[0]) + '\n{"question": "Two?", "answer": "two"}\n', encoding="utf-8")
    overrides = ["--set", "data.source=jsonl", "--set", f"data.train_file={train}"]
    for command in (["data", str(SMOKE)], ["run", str(SMOKE), "--set", f"run.storage_path={tmp_path}"]):
        capsys.readouterr()
        assert main([*command, *overrides]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f'reward-search: error: {train}:2: field "answer" must be a number, got "two"', command


# --- end to end -------------------------------------------------------------------------------------------------


class RecordingLitellm:
    """litellm with `completion` answered by a canned reply (litellm's own mock), recording the messages sent."""

    def __init__(self, real, reply: str) -> None:
        self.real, self.reply, self.sent = real, reply, []

    def __getattr__(self, name: str):
        return getattr(self.real, name)

    def completion(self, **kwargs):
        self.sent.append(kwargs["messages"])
        return self.real.completion(**kwargs, mock_response=self.reply)


@pytest.mark.slow
def test_a_smoke_search_on_a_jsonl_task_names_the_task_not_gsm8k(tmp_path, monkeypatch):
    """The smoke preset on an arithmetic file: one round, one LLM-proposed reward (canned reply), no finalize. The
    proposer's prompt and the report name the task; neither mentions GSM8K."""
    import ray

    from reward_search.analysis.report import build_report
    from reward_search.proposers import llm
    from reward_search.search.driver import run_search

    train = write_jsonl(tmp_path / "sums.jsonl", arithmetic(60))
    code = (
        "def has_solution(prompts, completions, answer, **kwargs):\n"
        "    return [1.0 if '<solution>' in str(c) else 0.0 for c in completions]\n"
    )
    reply = json.dumps([{"name": "has_solution", "code": code, "description": "a solution block"}])
    fake = RecordingLitellm(llm.import_litellm(), reply)
    monkeypatch.setattr(llm, "import_litellm", lambda: fake)
    config = load_config(
        SMOKE,
        [
            f"run.storage_path={tmp_path}",
            "run.name=jsonl",
            "data.source=jsonl",
            f"data.train_file={train}",
            "data.name=Sums",
            "search.rounds=1",
            "search.candidates_per_round=1",
            "finalize.enabled=false",
            "proposer.kind=llm",
            "proposer.model=anthropic/claude-sonnet-4-5",
        ],
    )
    start_local_ray()
    try:
        outcome = run_search(config, verbose=False)
    finally:
        ray.shutdown()
    assert [e.status for e in outcome.entries] == ["done"]
    run_dir = tmp_path / "jsonl"
    manifest = json.loads((run_dir / "manifest.json").read_text())["data"]
    assert manifest["task"] == "jsonl" and manifest["display_name"] == "Sums"
    assert fake.sent, "the LLM proposer was never asked"
    prompt = "\n".join(m["content"] for m in fake.sent[0])
    assert "Sums" in prompt and "problems whose answer is a number" in prompt and "What is" in prompt
    assert "GSM8K" not in prompt and "grade-school" not in prompt
    page = build_report(run_dir, n_resamples=50)
    for text in (page.read_text(encoding="utf-8"), (page.parent / "report.md").read_text(encoding="utf-8")):
        assert "Sums" in text and "GSM8K" not in text


def test_editing_the_prompt_file_changes_every_trial_key(tmp_path):
    """A user's prompt file is part of a trial's identity, so an edit between sessions retrains, never reuses."""
    from reward_search.training.spec import RewardSpec, trial_key

    train = write_jsonl(tmp_path / "train.jsonl", arithmetic(30))
    prompt = tmp_path / "prompt.txt"
    config = load_config(SMOKE)
    spec = RewardSpec(candidates=())

    def key() -> str:
        return trial_key(config, spec, get_task(jsonl_config(train, prompt_file=str(prompt))).load_splits().manifest)

    prompt.write_text("Answer inside <solution></solution>.\n", encoding="utf-8")
    first = key()
    assert first == key()  # stable while the file is unchanged
    prompt.write_text("Think, then answer inside <solution></solution>.\n", encoding="utf-8")
    assert key() != first
    packaged = get_task(jsonl_config(train)).load_splits().manifest
    assert packaged.prompt_sha256 == ""  # packaged prompts are fixed by the version: GSM8K keys do not change
