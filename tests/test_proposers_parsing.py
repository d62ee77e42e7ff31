"""The reply parser on constructed faults (missing fences, prose, broken JSON) and on real recorded replies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reward_search.candidates.candidate import find_entry
from reward_search.proposers.parsing import parse_reply
from reward_search.proposers.repair import json_variants, triple_quoted_to_json

FIXTURES = Path(__file__).parent / "fixtures" / "llm_replies"

CODE_A = '''import re


def _text(completion):
    """The completion's text."""
    return completion if isinstance(completion, str) else "".join(m.get("content") or "" for m in completion)


def gold_tag(prompts, completions, answer, **kwargs):
    """1.0 when the <solution> tag holds the gold."""
    return [1.0 if f"<solution>{g}</solution>" in _text(c) else 0.0 for c, g in zip(completions, answer)]
'''
CODE_B = """def short_reasoning(prompts, completions, answer, **kwargs):
    return [-len(str(c)) / 1000.0 for c in completions]
"""


def _fenced(*blocks: tuple[str, str, str], close_last: bool = True) -> str:
    parts = ["Here are the rewards.\n"]
    for i, (name, description, code) in enumerate(blocks):
        fence = "```" if close_last or i < len(blocks) - 1 else ""
        parts.append(f"### Reward: {name}\nDescription: {description}\n```python\n{code}{fence}\n")
    return "\n".join(parts) + "\nThese should help."


def test_fenced_blocks_with_headers():
    parsed = parse_reply(_fenced(("gold_tag", "exact gold.", CODE_A), ("short_reasoning", "brevity", CODE_B)))
    assert parsed.format == "fenced" and parsed.errors == [] and parsed.reason == ""
    assert [i["name"] for i in parsed.items] == ["gold_tag", "short_reasoning"]
    assert [i["description"] for i in parsed.items] == ["exact gold.", "brevity"]
    assert parsed.items[0]["code"] == CODE_A and find_entry(parsed.items[1]["code"]) == "short_reasoning"


def test_missing_closing_fence_is_repaired_when_the_code_parses_and_reported_when_cut_off():
    repaired = parse_reply(_fenced(("gold_tag", "x", CODE_A), ("short_reasoning", "y", CODE_B), close_last=False))
    assert [i["name"] for i in repaired.items] == ["gold_tag", "short_reasoning"]
    assert repaired.items[1]["code"] == CODE_B and repaired.errors == []  # the prose after it was dropped
    cut = _fenced(("gold_tag", "x", CODE_A), ("short_reasoning", "y", CODE_B[:60]), close_last=False)
    cut = cut.replace("\nThese should help.", "")
    parsed = parse_reply(cut)
    assert [i["name"] for i in parsed.items] == ["gold_tag"]
    assert len(parsed.errors) == 1 and "cut off" in parsed.errors[0] and "answer, **kw" in parsed.errors[0]


def test_headers_are_optional_and_non_python_blocks_ignored():
    reply = f"Output:\n```text\nnot code\n```\n```\n{CODE_B}```\n```python\nprint('no def here')\n```"
    parsed = parse_reply(reply)
    assert [i["code"] for i in parsed.items] == [CODE_B] and parsed.items[0]["name"] == ""


def test_triple_quoted_json_with_docstrings_inside_is_repaired():
    """The fault a real 1.5B coder model made on every call: `"code": \"\"\" ... \"\"\"` with docstrings inside."""
    reply = (
        '[\n  {"name": "gold_tag", "code": """' + CODE_A + '""", "description": "exact"},\n'
        '  {"name": "short_reasoning", "code": """' + CODE_B + '""", "description": "short",},\n]'
    )
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply)
    parsed = parse_reply(reply)
    assert parsed.format == "json" and "triple-quoted strings" in parsed.repairs and "trailing commas" in parsed.repairs
    assert [i["name"] for i in parsed.items] == ["gold_tag", "short_reasoning"]
    assert parsed.items[0]["code"] == CODE_A  # the docstrings inside survived


def test_raw_newlines_prose_and_concatenation_in_json():
    raw = '{"name": "b", "code": "' + CODE_B.replace('"', '\\"') + '", "description": "d"}'
    parsed = parse_reply("Sure! Here you go:\n[" + raw + "]\nEnjoy.")
    assert [i["code"] for i in parsed.items] == [CODE_B]
    concat = '[{"name": "b", "code": "def b(prompts, completions, answer, **kw):\\n" +\n "    return [0.0]\\n"}]'
    assert parse_reply(concat).items[0]["code"] == "def b(prompts, completions, answer, **kw):\n    return [0.0]\n"


def test_json_variants_apply_repairs_cumulatively():
    text = '[{"code": """x""",},]'
    variants = dict(json_variants(text))
    assert variants["as written"] == text
    assert json.loads(variants["repaired triple-quoted strings, trailing commas"]) == [{"code": "x"}]
    assert triple_quoted_to_json('{"code": """a\n"""}') == '{"code": "a"}'


@pytest.mark.parametrize(
    ("reply", "reason", "fragment"),
    [
        ("", "empty", "empty reply"),
        ("   \n", "empty", "empty reply"),
        ("I'm sorry, but I can't help with writing that.", "refused", "refused"),
        ('{"name": "x", "code": broken', "malformed", 'near \'{"name": "x", "code": broken\''),
        ("Rewards should check the answer carefully.", "malformed", "no JSON array or object"),
    ],
)
def test_unusable_replies_say_why_with_the_offending_fragment(reply, reason, fragment):
    parsed = parse_reply(reply)
    assert parsed.items == [] and parsed.reason == reason
    assert len(parsed.errors) == 1 and fragment in parsed.errors[0]


def _recorded() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*/*.json"))]


def test_recorded_real_replies_parse_as_measured():
    """Every reply recorded from a real model parses exactly as noted when it was recorded (format and rewards)."""
    recorded = _recorded()
    assert recorded, "no recorded replies"
    for item in recorded:
        parsed = parse_reply(item["reply"])
        assert parsed.format == item["expected"]["format"], item["file"]
        assert [i["name"] for i in parsed.items] == item["expected"]["names"], item["file"]
        for reward in parsed.items:
            compile(reward["code"], item["file"], "exec")  # parsed code is Python (validation comes later)
