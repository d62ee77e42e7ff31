"""What a proposer is told about earlier rounds: a deterministic, token-budgeted summary of the leaderboard.

`build_feedback` sorts the leaderboard rows into ranked (screened and scored), rejected (failed validation),
skipped (validated, not trained by the cascade: shown with the result of the reward each behaves like) and failed
(failed, crashed or stopped trials). `Feedback.render` writes the ranked table, the top-k sources, the
training-curve summaries and the reasons, and drops the lowest-priority parts first when over the budget:
failed trials, then rejections, then curve summaries, then sources (worst first), then table rows (worst first).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reward_search.candidates.escape import shown
from reward_search.candidates.prescreen import describe as prescreen_line
from reward_search.candidates.records import LeaderboardEntry, rank_entries, rank_labels
from reward_search.proposers.settings import ProposerConfig

FAILED_STATUSES: tuple[str, ...] = ("failed", "crashed", "stopped")
VALIDATED_STATUSES: tuple[str, ...] = ("accepted", "screening", "done", "failed", "stopped")
_EMPTY_TEXT = "No earlier rounds: this is the first round, so there are no scores or rejections to learn from yet."
WITHHELD_TEXT = (
    "No feedback: the results of earlier rounds are withheld in this run (proposer.feedback: none), so propose "
    "fresh rewards as you would in a first round."
)
_REASON_CHARS = 300


def approx_tokens(text: str) -> int:
    """A cheap token estimate (characters / 4, rounded up): good enough for budgeting a prompt section."""
    return math.ceil(len(text) / 4)


def _copy(entry: LeaderboardEntry) -> LeaderboardEntry:
    return LeaderboardEntry.from_dict(entry.to_dict())


@dataclass(frozen=True)
class Feedback:
    """The leaderboard as of the start of `round`, split into the views a proposer needs."""

    round: int
    ranked: tuple[LeaderboardEntry, ...] = ()  # scored entries, best first
    rejected: tuple[LeaderboardEntry, ...] = ()  # failed validation, in (round, name) order
    failed: tuple[LeaderboardEntry, ...] = ()  # failed, crashed or stopped trials, in (round, name) order
    skipped: tuple[LeaderboardEntry, ...] = ()  # validated, not trained (search/cascade.py), in (round, name) order
    entries: tuple[LeaderboardEntry, ...] = ()  # every entry, in (round, name, id) order
    top_k_sources: int = 3
    metric: str = "accuracy"  # the ranking's primary key (selection.metric)
    withheld: bool = False  # proposer.feedback: none: the earlier rounds' results are not shown (unguided control)

    @property
    def empty(self) -> bool:
        return not self.entries

    def top(self, k: int | None = None) -> tuple[LeaderboardEntry, ...]:
        """The best `k` scored entries (default: `top_k_sources`)."""
        return self.ranked[: self.top_k_sources if k is None else k]

    def validated(self) -> tuple[LeaderboardEntry, ...]:
        """Entries that passed validation (whatever happened to their trial), in (round, name, id) order."""
        return tuple(e for e in self.entries if e.status in VALIDATED_STATUSES)

    def render(self, token_budget: int | None = None) -> str:
        """The feedback as prompt text, within `token_budget` (approximate tokens; None: no limit)."""
        if self.withheld:
            return WITHHELD_TEXT
        if self.empty:
            return _EMPTY_TEXT
        blocks = _blocks(self)
        kept = list(blocks)
        text = _assemble(kept, len(blocks))
        while token_budget is not None and approx_tokens(text) > token_budget:
            droppable = [i for i, block in enumerate(kept) if block.priority != (0, 0)]  # the best row stays
            if not droppable:
                break
            del kept[max(droppable, key=lambda i: kept[i].priority)]
            text = _assemble(kept, len(blocks))
        return text


def build_feedback(
    entries: Sequence[LeaderboardEntry], round: int, config: ProposerConfig | None = None, metric: str = "accuracy"
) -> Feedback:
    """Feedback for proposing `round` from the leaderboard rows of earlier rounds (later rows are ignored), ranked
    by the one ranking rule (`records.rank_entries`) under the run's `selection.metric`. Under
    `proposer.feedback: none` nothing of the earlier rounds is shown: the feedback of every round is empty."""
    config = config or ProposerConfig()
    if config.feedback == "none":
        return Feedback(round=round, metric=metric, top_k_sources=config.top_k_sources, withheld=True)
    earlier = sorted((_copy(e) for e in entries if e.round < round), key=lambda e: (e.round, e.name, e.candidate_id))
    ranked = rank_entries(earlier, metric)
    return Feedback(
        round=round,
        metric=metric,
        ranked=tuple(ranked),
        rejected=tuple(e for e in earlier if e.status == "rejected"),
        failed=tuple(e for e in earlier if e.status in FAILED_STATUSES),
        skipped=tuple(e for e in earlier if e.status == "skipped"),
        entries=tuple(earlier),
        top_k_sources=config.top_k_sources,
    )


# --- rendering -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    """One droppable piece of the rendered text: `section` groups blocks under a heading."""

    section: str
    priority: tuple[int, int]  # higher is dropped first
    text: str


_HEADINGS = {
    "table": "## Leaderboard (selection split, best first; =: tie; gold LP: gold solution log-prob, higher is better)"
    "\n\n| rank | name | round | accuracy | gold LP | 95% CI | n | signal |\n|---|---|---|---|---|---|---|---|",
    "sources": "## Source of the top rewards",
    "nosignal": "## Rewards that taught nothing (GRPO learns only from groups whose scores differ: give "
    "different completions of the same question different scores)",
    "curves": "## Training curves of screened rewards (start -> end of the screening run)",
    "rejected": "## Rejected by validation (did not run)",
    "failed": "## Failed or crashed trials",
    "skipped": "## Not trained: the pre-screen skipped them (a reward that scores the policy's rollouts like an "
    "earlier one trains like it: propose rewards that rank completions differently)",
}
_ORDER = ("table", "nosignal", "sources", "curves", "skipped", "rejected", "failed")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _shorten(text: str, limit: int = _REASON_CHARS) -> str:
    text = shown(" ".join(text.split()))  # often candidate-controlled: no control bytes or lone surrogates
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _trend(summary: dict[str, Any], key: str, digits: int = 3) -> str | None:
    value = summary.get(key)
    if not isinstance(value, dict) or (value.get("start") is None and value.get("end") is None):
        return None
    return f"{_fmt(value.get('start'), digits)} -> {_fmt(value.get('end'), digits)}"


def _curve_line(entry: LeaderboardEntry) -> str | None:
    summary = entry.curve_summary or {}
    parts = []
    for label, key, digits in (
        (f"reward {entry.name}", f"reward/{entry.name}", 3),
        ("check_answer", "reward/check_answer", 3),
        ("zero-std share", "zero_std_share", 2),
        ("completion length", "completion_length", 0),
    ):
        trend = _trend(summary, key, digits)
        if trend is not None:
            parts.append(f"{label} {trend}")
    if not parts:
        return None
    steps = summary.get("steps")
    return f"- {entry.name}" + (f" ({steps} steps)" if steps else "") + ": " + "; ".join(parts)


def no_signal(entry: LeaderboardEntry) -> str | None:
    """Why the entry's screening run learned nothing (`training.signal`), or None."""
    signal = (entry.curve_summary or {}).get("signal")
    return signal.get("no_signal") if isinstance(signal, dict) else None


def _blocks(feedback: Feedback) -> list[_Block]:
    blocks: list[_Block] = []
    labels = rank_labels(feedback.ranked, feedback.metric)
    for i, e in enumerate(feedback.ranked):
        ci = f"[{_fmt(e.ci_low)}, {_fmt(e.ci_high)}]" if e.ci_low is not None else "n/a"
        n = "n/a" if e.n is None else str(e.n)
        signal = "NONE" if no_signal(e) else "ok"
        scores = f"{_fmt(e.accuracy)} | {_fmt(e.gold_logprob, 4)} | {ci} | {n}"
        row = f"| {labels[i]} | {e.name} | {e.round} | {scores} | {signal} |"
        blocks.append(_Block("table", (0, i), row))
    for i, e in enumerate(feedback.ranked):
        reason = no_signal(e)
        if reason:
            blocks.append(_Block("nosignal", (2, i), f"- {e.name} (round {e.round}): {_shorten(reason)}"))
    for i, e in enumerate(feedback.top()):
        scores = f"accuracy {_fmt(e.accuracy)}, gold log-prob {_fmt(e.gold_logprob, 4)}"
        header = f"### {i + 1}. {e.name} (round {e.round}, {scores})"
        description = f"\n{_shorten(e.description)}" if e.description else ""
        for warning in (e.probe or {}).get("warnings") or []:  # probe warnings (weak answer signal)
            description += f"\nProbe warning: {_shorten(str(warning))}"
        if e.prescreen:  # what it did on the policy's own rollouts, before training
            description += "\nP" + prescreen_line(e.prescreen)[1:]
        blocks.append(_Block("sources", (3, i), f"{header}{description}\n```python\n{e.source.strip()}\n```"))
    for i, e in enumerate(feedback.ranked):
        line = _curve_line(e)
        if line is not None:
            blocks.append(_Block("curves", (4, i), line))
    for i, e in enumerate(feedback.rejected):
        reasons = "; ".join(e.reasons) or "no reason recorded"
        blocks.append(_Block("rejected", (5, i), f"- {e.name} (round {e.round}): {_shorten(reasons)}"))
    for i, e in enumerate(feedback.skipped):
        blocks.append(_Block("skipped", (5, i), _skipped_line(e, feedback.entries)))
    for i, e in enumerate(feedback.failed):
        reasons = "; ".join(e.reasons) or "no reason recorded"
        blocks.append(_Block("failed", (6, i), f"- {e.name} (round {e.round}, {e.status}): {_shorten(reasons)}"))
    return blocks


def _skipped_line(entry: LeaderboardEntry, entries: Sequence[LeaderboardEntry]) -> str:
    """A skipped candidate, why, and the result of the one it behaves like (as of this round)."""
    reason = entry.reasons[-1] if entry.reasons else "no reason recorded"
    like = ((entry.probe or {}).get("cascade") or {}).get("like")
    other = next((e for e in entries if e.candidate_id == like), None) if like else None
    result = ""
    if other is not None:
        result = f"; {other.name} scored accuracy {_fmt(other.accuracy)} ({other.status})"
    return f"- {entry.name} (round {entry.round}): {_shorten(reason)}{result}"


def _assemble(blocks: Sequence[_Block], total: int) -> str:
    sections = []
    for section in _ORDER:
        lines = [b.text for b in blocks if b.section == section]
        if section == "table" and not lines:
            lines = ["| - | no candidate has been scored yet | | | | | | |"]
        if lines:
            joiner = "\n\n" if section == "sources" else "\n"
            sections.append(_HEADINGS[section] + "\n" + joiner.join(lines))
    dropped = total - len(blocks)
    if dropped:
        sections.append(f"({dropped} lower-priority feedback items omitted to fit the length budget.)")
    return "\n\n".join(sections)


# --- the paper's feedback ----------------------------------------------------------------------------------------

PAPER_FEEDBACK_HEADING = "Previously generated rewards (do not duplicate names or semantics):"


def paper_feedback_lines(feedback: Feedback) -> list[str]:
    """Every earlier trial as the reference listed it: ``- name: round=R, F1=x, acc=y``, best F1 (then accuracy)
    first, trials that failed, crashed or were stopped at F1 = 0; no code, no curves, no rejected candidates."""
    trials = []
    for entry in feedback.entries:  # (round, name, id) order; the sort below is stable
        if entry.status == "done" and entry.accuracy is not None:
            trials.append((entry, entry.f1 or 0.0, entry.accuracy))
        elif entry.status in FAILED_STATUSES:
            trials.append((entry, 0.0, 0.0))
    trials.sort(key=lambda item: (item[1], item[2]), reverse=True)
    return [f"- {e.name}: round={e.round}, F1={f1:.3f}, acc={acc:.3f}" for e, f1, acc in trials]


def render_paper_feedback(feedback: Feedback) -> str:
    """The reference's prior-rewards section (with its trailing blank line), or "" before any trial has run."""
    lines = paper_feedback_lines(feedback)
    return f"{PAPER_FEEDBACK_HEADING}\n" + "\n".join(lines) + "\n\n" if lines else ""
