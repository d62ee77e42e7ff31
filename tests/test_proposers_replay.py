"""The LLM proposer over HTTP: real replies recorded from a model, replayed by a local server with the OpenAI
chat-completions shape, so litellm's real client path runs (no mock_response). Covers self-correction,
transcripts and their redaction, unknown costs, an unreachable api_base and the loud failure of an empty round.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reward_search.candidates.candidate import RewardCandidate
from reward_search.candidates.sandbox import CandidateRunner
from reward_search.candidates.settings import CandidatesConfig
from reward_search.candidates.validation import validate_candidate
from reward_search.config import DataConfig
from reward_search.errors import UserError
from reward_search.proposers.endpoint import check_api_base
from reward_search.proposers.feedback import build_feedback
from reward_search.proposers.llm import LLMProposer
from reward_search.proposers.settings import ProposerConfig
from reward_search.task.gsm8k import load_splits

FIXTURES = Path(__file__).parent / "fixtures" / "llm_replies"
REPO = Path(__file__).resolve().parent.parent
SECRET = "sk-THISISNOTAREALKEY0123456789abcdef"


class ReplayServer:
    """Answers POST /v1/chat/completions with the next canned reply; keeps every request body and header."""

    def __init__(self, replies: list[dict]) -> None:
        self.replies, self.requests = list(replies), []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append(
                    {"path": self.path, "body": body, "headers": {k.lower(): v for k, v in self.headers.items()}}
                )
                reply = owner.replies[min(len(owner.requests), len(owner.replies)) - 1]
                data = json.dumps(_completion(body, reply)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ReplayServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _completion(request: dict, reply: dict) -> dict:
    usage = reply.get("usage") or {"prompt_tokens": 1000, "completion_tokens": 200}
    return {
        "id": "chatcmpl-replay",
        "object": "chat.completion",
        "created": 1764300000,
        "model": request.get("model", "replay"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply["reply"]},
                "finish_reason": reply.get("finish_reason", "stop"),
            }
        ],
        "usage": {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]},
    }


FENCED_REPLY = {
    "reply": """Here are two rewards.

### Reward: solution_tag_number
Description: Rewards a number inside the <solution> tag, and more when it is the gold answer.
```python
import re


def _text(completion):
    if isinstance(completion, str):
        return completion
    return "".join(str(m.get("content") or "") for m in completion if isinstance(m, dict))


def solution_tag_number(prompts, completions, answer, **kwargs):
    scores = []
    for completion, gold in zip(completions, answer):
        found = re.search(r"<solution>\\s*(-?[\\d,]*\\.?\\d+)\\s*</solution>", _text(completion))
        if found is None:
            scores.append(-0.5)
        elif float(found.group(1).replace(",", "")) == float(str(gold).replace(",", "")):
            scores.append(2.0)
        else:
            scores.append(0.5)
    return scores
```

### Reward: closes_thinking
Description: A small bonus for closing the thinking block before answering.
```python
def closes_thinking(prompts, completions, answer, **kwargs):
    out = []
    for completion in completions:
        text = completion if isinstance(completion, str) else str(completion[-1].get("content") or "")
        out.append(0.5 if "</thinking>" in text and text.find("</thinking>") < text.find("<solution>") else 0.0)
    return out
```
""",
    "finish_reason": "stop",
    "usage": {"prompt_tokens": 1800, "completion_tokens": 420},
}


def recorded(prompt: str) -> list[dict]:
    """Recorded real replies to one prompt format, in (round, call) order."""
    items = [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*/*.json"))]
    return sorted((i for i in items if i["prompt"] == prompt), key=lambda i: (i["round"], i["call"]))


@pytest.fixture(scope="module")
def train():
    return load_splits(DataConfig()).train


@pytest.fixture
def key_env(monkeypatch) -> Iterator[None]:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    yield


def _proposer(url: str, train, **fields) -> LLMProposer:
    config = ProposerConfig(kind="llm", model="openai/qwen-coder", api_base=url, max_retries=0, **fields)
    return LLMProposer(config, train=train)


def test_replies_through_litellm_with_transcripts(tmp_path, train, key_env):
    """A fenced reply comes back through litellm's OpenAI client from a local server, parses, and is saved."""
    with ReplayServer([FENCED_REPLY]) as server:
        proposer = _proposer(server.url, train)
        proposer.attach_run_dir(tmp_path)
        batch = proposer.propose(build_feedback([], 1, proposer.config), 2, 1)
    body = server.requests[0]["body"]
    assert server.requests[0]["path"] == "/v1/chat/completions" and body["model"] == "qwen-coder"
    assert "```python" in body["messages"][1]["content"] and "response_format" not in body
    assert [c.name for c in batch] == ["solution_tag_number", "closes_thinking"]
    assert batch[0].description.startswith("Rewards a number inside")
    record = proposer.records[0]
    assert record.cost_usd is None and not record.cost_known  # a self-hosted model's price is unknown, not $0
    assert record.outcome == "ok" and record.reply_format == "fenced" and record.prompt_tokens == 1800
    transcript = json.loads((tmp_path / "proposals" / "round-1" / "call-1.json").read_text())
    assert transcript["reply"] == FENCED_REPLY["reply"] and transcript["request"]["messages"] == body["messages"]
    assert [c["name"] for c in transcript["candidates"]] == [c.name for c in batch]
    index = json.loads((tmp_path / "proposals" / "index.json").read_text())
    assert {index[c.id] for c in batch} == {"round-1/call-1.json"}  # each candidate links to its reply
    assert {c.origin.transcript for c in batch} == {"proposals/round-1/call-1.json"}  # and its record says so
    assert all(RewardCandidate.from_dict(c.to_dict()).origin.transcript == c.origin.transcript for c in batch)
    assert record.transcript == "proposals/round-1/call-1.json"


def test_self_correction_quotes_parse_errors_and_rejections(tmp_path, train, monkeypatch):
    """A cut-off reply, then a reply with a rejected reward: each next request quotes what went wrong.

    No API key is set, as with a self-hosted server: the request goes out with a placeholder key."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    real = FENCED_REPLY
    cut = {"reply": real["reply"][: len(real["reply"]) * 2 // 3], "finish_reason": "length"}
    hostile = {
        "reply": "### Reward: reads_files\nDescription: x\n```python\nimport os\n\n\n"
        "def reads_files(prompts, completions, answer, **kwargs):\n"
        "    return [float(len(os.listdir('.'))) for _ in completions]\n```\n"
    }
    with ReplayServer([cut, hostile, real]) as server, CandidateRunner() as runner:
        proposer = _proposer(server.url, train)
        proposer.attach_run_dir(tmp_path)
        feedback = build_feedback([], 1, proposer.config)
        proposer.propose(feedback, 2, 1)
        second = proposer.propose(feedback, 2, 1)
        verdicts = []
        for candidate in second:
            verdict = validate_candidate(candidate, runner, CandidatesConfig())
            verdicts.append(
                (candidate.id, candidate.name, verdict.accepted, [f"{verdict.stage}: {r}" for r in verdict.reasons])
            )
        proposer.note_verdicts(1, verdicts)
        proposer.propose(feedback, 2, 1)
    assert proposer.records[0].outcome == "truncated" and len(server.requests) == 3
    assert server.requests[0]["headers"]["authorization"] == "Bearer none"
    prompts = [r["body"]["messages"][1]["content"] for r in server.requests]
    assert "Problems with your earlier replies" not in prompts[0]
    assert "reply 1 was cut off at the token limit" in prompts[1]
    assert [v[2] for v in verdicts] == [False] and "line 1" in verdicts[0][3][0]
    assert "reads_files was rejected: policy: line 1" in prompts[2] and "cut off" in prompts[2]
    transcript = json.loads((tmp_path / "proposals" / "round-1" / "call-2.json").read_text())
    assert transcript["verdicts"][0]["name"] == "reads_files" and not transcript["verdicts"][0]["accepted"]
    assert proposer.round_summary(1) == "1 reply cut off, 1 reward rejected, 1 repeated reward"


def test_a_resubmitted_reward_is_named_in_the_next_request(tmp_path, train):
    """Seen with Qwen2.5-Coder-1.5B: round 2 repeated round 1's rewards verbatim. The next call is told so."""
    with ReplayServer([FENCED_REPLY, FENCED_REPLY, FENCED_REPLY]) as server:
        proposer = _proposer(server.url, train)
        feedback = build_feedback([], 1, proposer.config)
        first = proposer.propose(feedback, 2, 1)
        assert first and proposer.propose(feedback, 2, 1) == []  # the repeat is dropped, not screened twice
        proposer.propose(feedback, 2, 1)
    prompts = [r["body"]["messages"][1]["content"] for r in server.requests]
    assert "resubmitted" not in prompts[1]
    names = ", ".join(c.name for c in first)
    assert f"reply 2 resubmitted earlier rewards unchanged ({names}): write new ones" in prompts[2]


def test_a_restarted_proposer_never_overwrites_an_earlier_sessions_transcripts(tmp_path, train):
    """A driver that died mid-round before saving its state left call files behind: the next session adds to them.

    (The same request issued again reuses the saved reply instead: tests/test_proposer_replay.py. Here the request
    differs, n=3 against n=2, so it is a new call.)"""
    with ReplayServer([FENCED_REPLY, FENCED_REPLY]) as server:
        first = _proposer(server.url, train)
        first.attach_run_dir(tmp_path)
        first.propose(build_feedback([], 1, first.config), 2, 1)
        before = (tmp_path / "proposals" / "round-1" / "call-1.json").read_text()
        second = _proposer(server.url, train)  # no state restored, as after a crash between call and save
        second.attach_run_dir(tmp_path)
        second.propose(build_feedback([], 1, second.config), 3, 1)
    assert len(server.requests) == 2
    folder = tmp_path / "proposals" / "round-1"
    assert sorted(p.name for p in folder.iterdir()) == ["call-1.json", "call-2.json"]
    assert (folder / "call-1.json").read_text() == before
    assert second.records[0].transcript == "proposals/round-1/call-2.json"


def test_transcripts_redact_secrets(tmp_path, train, key_env):
    """The key litellm sends to the server never reaches the run directory, even when the model echoes it."""
    echo = {"reply": f"Your key is {SECRET}. I cannot write rewards today."}
    with ReplayServer([echo]) as server:
        proposer = _proposer(server.url, train)
        proposer.attach_run_dir(tmp_path)
        assert proposer.propose(build_feedback([], 1, proposer.config), 2, 1) == []
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {SECRET}"  # it was really sent
    text = (tmp_path / "proposals" / "round-1" / "call-1.json").read_text()
    assert SECRET not in text and "[redacted]" in text
    assert proposer.records[0].outcome == "refused" and "refused" in json.dumps(proposer.state())
    assert SECRET not in json.dumps(proposer.state())


def test_unreachable_api_base_is_one_line_exit_2(tmp_path, capsys):
    from reward_search.cli import main

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(UserError, match=f"proposer.api_base: cannot reach {url}"):
        check_api_base(url, timeout_s=2)
    code = main(
        [
            "run",
            str(REPO / "experiments" / "smoke.yaml"),
            *("--set", "proposer.kind=llm", "--set", "proposer.model=openai/x", "--set", f"proposer.api_base={url}"),
            *("--set", f"run.storage_path={tmp_path}"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and url in err[0]
    assert not (tmp_path / "smoke" / "proposals").exists()  # nothing was proposed


@pytest.mark.slow
def test_a_round_without_valid_rewards_fails_loudly(tmp_path, capfd, caplog):
    """A model that never writes a usable reward: exit 1, one line naming the cause and folder, no finalize."""
    from reward_search.cli import main

    replies = [{"reply": 'Rewards should check the answer: {"name": "check", "code": ???'}]
    with ReplayServer(replies) as server:
        code = main(
            [
                "run",
                str(REPO / "experiments" / "smoke.yaml"),
                *("--set", "proposer.kind=llm", "--set", "proposer.model=openai/qwen-coder"),
                *("--set", f"proposer.api_base={server.url}", "--set", "search.max_proposal_attempts=2"),
                *("--set", f"run.storage_path={tmp_path}", "--set", "proposer.reply_format=json"),
            ]
        )
    captured = capfd.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("reward-search: error")]
    folder = tmp_path / "smoke"
    assert code == 1 and len(lines) == 1, captured.err
    assert "round 1: no valid reward in 2 proposer calls: 2 malformed replies" in lines[0]
    assert f"{folder}/proposals/round-1/" in lines[0]
    assert len(server.requests) == 2 and sorted(p.name for p in (folder / "proposals" / "round-1").iterdir()) == [
        "call-1.json",
        "call-2.json",
    ]
    assert not (folder / "finalize.json").exists() and "finalize:" not in captured.err
    assert "Traceback" not in captured.err  # an expected stop, not a crash: no traceback printed or logged
    assert not [r.getMessage() for r in caplog.records if r.exc_info], "a traceback was logged"
    assert main(["status", str(folder)]) == 0
    status = capfd.readouterr().out
    assert "round 1: 2 LLM calls" in status and "0 accepted" in status


def test_report_links_transcripts_per_round():
    """The report's cost section gets a per-round table of LLM calls linking `proposals/round-<r>/`."""
    from types import SimpleNamespace

    from reward_search.analysis.document import Link
    from reward_search.analysis.search_sections import proposals_table

    records = [
        {"round": 1, "outcome": "malformed", "parsed": 0},
        {"round": 1, "outcome": "ok", "parsed": 2, "accepted": 1, "rejected": 1},
        {"round": 2, "outcome": "truncated", "parsed": 1, "accepted": 1},
    ]
    table = proposals_table(SimpleNamespace(driver_state={"proposer_state": {"records": records}}))
    assert table is not None and [row[:6] for row in table.rows] == [
        ("round 1", "2", "1 ok, 1 malformed", "2", "1", "1"),
        ("round 2", "1", "1 truncated", "1", "1", "0"),
    ]
    assert table.rows[0][6] == Link("proposals/round-1/", "../proposals/round-1/")
    assert proposals_table(SimpleNamespace(driver_state={"proposer_usage": {"calls": 3}})) is None


def test_recorded_real_replies_replay_through_litellm(tmp_path, train):
    """Real replies of a 1.5B coder model to this project's prompt (rounds 1 and 2, with corrections) replayed
    over HTTP: each parses, and each call ends with the outcome it had when it was recorded."""
    replies = recorded("fenced")
    assert replies, "no recorded replies"
    with ReplayServer(replies) as server:
        proposer = _proposer(server.url, train)
        proposer.attach_run_dir(tmp_path)
        for reply in replies:
            proposer.propose(build_feedback([], reply["round"], proposer.config), 2, reply["round"])
    for record, reply in zip(proposer.records, replies, strict=True):
        assert record.outcome == reply["outcome"], reply["file"]
        assert record.parsed == len(reply["expected"]["names"]), reply["file"]
        assert record.completion_tokens == reply["usage"]["completion_tokens"]
    assert len(list((tmp_path / "proposals").glob("round-*/call-*.json"))) == len(replies)
