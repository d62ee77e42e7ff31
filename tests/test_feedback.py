"""Feedback: ranking, deterministic rendering, token-budget truncation, reasons of rejections and failures."""

from __future__ import annotations

import hashlib

from reward_search.candidates.records import LeaderboardEntry
from reward_search.proposers.feedback import approx_tokens, build_feedback
from reward_search.proposers.settings import ProposerConfig


def _done(name: str, round: int, accuracy: float, **extra) -> LeaderboardEntry:
    source = (
        f"def {name}(prompts, completions, answer, **kwargs):\n"
        f"    return [float(len(str(c)) > {len(name)}) for c in completions]\n"
    )
    return LeaderboardEntry(
        candidate_id=hashlib.sha256(name.encode()).hexdigest()[:16],
        name=name,
        round=round,
        proposer="evolutionary",
        status="done",
        source=source,
        description=f"rewards {name}",
        accuracy=accuracy,
        f1=2 * accuracy / (1 + accuracy),
        n=50,
        ci_low=accuracy - 0.1,
        ci_high=accuracy + 0.1,
        curve_summary={
            "steps": 20,
            f"reward/{name}": {"start": 0.1, "end": 0.6},
            "zero_std_share": {"start": 0.5, "end": 0.25},
            "completion_length": {"start": 180.0, "end": 120.0},
        },
        **extra,
    )


def _entries() -> list[LeaderboardEntry]:
    return [
        _done("steady_steps", 1, 0.30),
        _done("answer_close", 1, 0.42),
        _done("format_tight", 2, 0.36),
        LeaderboardEntry(
            "a" * 16, "imports_os", 1, "llm", "rejected", "import os\n", reasons=["policy: import of 'os'"]
        ),
        LeaderboardEntry("b" * 16, "slowpoke", 2, "llm", "crashed", "def slowpoke(): ...", reasons=["call timeout x5"]),
        LeaderboardEntry("c" * 16, "pending", 2, "llm", "screening", "def pending(): ..."),
        _done("future_round", 3, 0.99),  # not earlier than round 3: excluded
    ]


def test_ranking_views_and_exclusion_of_later_rounds():
    feedback = build_feedback(_entries(), round=3, config=ProposerConfig(top_k_sources=2))
    assert [e.name for e in feedback.ranked] == ["answer_close", "format_tight", "steady_steps"]
    assert [e.name for e in feedback.top()] == ["answer_close", "format_tight"]
    assert [e.name for e in feedback.rejected] == ["imports_os"]
    assert [e.name for e in feedback.failed] == ["slowpoke"]
    assert "future_round" not in {e.name for e in feedback.entries}
    assert {e.name for e in feedback.validated()} == {"answer_close", "format_tight", "steady_steps", "pending"}


def test_render_contains_table_sources_curves_and_reasons():
    text = build_feedback(_entries(), round=3, config=ProposerConfig(top_k_sources=2)).render()
    table = text.index("| 1 | answer_close | 1 | 0.420 | n/a | [0.320, 0.520] | 50 | ok |")
    assert table < text.index("| 2 | format_tight") < text.index("| 3 | steady_steps")
    assert "def answer_close(" in text and "def format_tight(" in text and "def steady_steps(" not in text
    assert "reward answer_close 0.100 -> 0.600" in text and "zero-std share 0.50 -> 0.25" in text
    assert "completion length 180 -> 120" in text
    assert "imports_os (round 1): policy: import of 'os'" in text
    assert "slowpoke (round 2, crashed): call timeout x5" in text


def test_rendering_is_deterministic_and_independent_of_input_order():
    entries = _entries()
    first = build_feedback(entries, 3).render(2000)
    again = build_feedback(list(reversed(entries)), 3).render(2000)
    assert first == again


def test_truncation_drops_low_priority_parts_and_keeps_the_table():
    feedback = build_feedback(_entries(), round=3, config=ProposerConfig(top_k_sources=3))
    full = feedback.render()
    small = feedback.render(token_budget=150)
    assert approx_tokens(small) <= 150 < approx_tokens(full)
    assert "| 1 | answer_close |" in small and "| 3 | steady_steps |" in small
    assert "slowpoke" not in small  # failed trials go first
    assert "omitted to fit" in small
    # Whatever the budget, a part is only kept when every higher-priority part is kept too.
    order = ["| 3 | steady_steps |", "def steady_steps(", "reward steady_steps 0.100", "imports_os", "slowpoke"]
    seen_partial = False
    for budget in range(100, approx_tokens(full) + 10, 5):
        text = feedback.render(budget)
        kept = [marker in text for marker in order]
        assert kept == sorted(kept, reverse=True), (budget, kept)
        seen_partial |= 0 < sum(kept) < len(kept)
    assert seen_partial


def test_tiny_budget_still_keeps_the_best_row():
    text = build_feedback(_entries(), round=3).render(token_budget=10)
    assert "| 1 | answer_close |" in text


def test_empty_feedback_says_there_are_no_earlier_rounds():
    feedback = build_feedback([], round=1)
    assert feedback.empty and feedback.top() == ()
    assert "No earlier rounds" in feedback.render(50)


def test_feedback_does_not_alias_the_leaderboard_rows():
    entries = _entries()
    feedback = build_feedback(entries, round=3)
    entries[1].accuracy = 0.0
    assert feedback.ranked[0].name == "answer_close" and feedback.ranked[0].accuracy == 0.42
