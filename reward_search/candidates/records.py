"""The leaderboard's row: one candidate reward, what happened to it, and how its screening run scored.

A plain dataclass so that it travels between the leaderboard actor, the searcher, the feedback builder and
Parquet without conversion code in each place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reward_search.candidates.status import Status


@dataclass
class LeaderboardEntry:
    """One candidate's record. Metrics are on the selection split (dev unless a run says otherwise)."""

    candidate_id: str
    name: str
    round: int
    proposer: str
    status: str  # a `Status` value (candidates/status.py)
    source: str
    description: str = ""
    parents: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    trial_key: str | None = None
    trial_dir: str | None = None
    selection_split: str = "dev"
    accuracy: float | None = None
    f1: float | None = None
    extraction_rate: float | None = None
    correct: int | None = None
    n: int | None = None
    ci_low: float | None = None  # 95% interval of the accuracy
    ci_high: float | None = None
    # mean per-token log-probability of the gold worked solutions under the adapter (the graded paired signal)
    gold_logprob: float | None = None
    dev_curve: list[float] = field(default_factory=list)  # intermediate dev accuracies, in report order
    curve_summary: dict[str, Any] = field(default_factory=dict)  # screening.TrialResult.curve_summary
    probe: dict[str, Any] | None = None  # the validation probe report
    steps: int | None = None  # training steps its trial reached (a `stopped` trial: where the scheduler stopped it)
    train_seconds: float | None = None
    gpu_hours: float | None = None
    conditioned_on: int | None = None  # finished results the feedback of its proposal included (None: unknown)
    updated: float = 0.0  # unix time of the last change

    @property
    def prescreen(self) -> dict[str, Any] | None:
        """The zero-training pre-screen of its validation (candidates/prescreen.py): AUC, signal, signature, cost."""
        return (self.probe or {}).get("prescreen")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LeaderboardEntry:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


SELECTION_METRICS: tuple[str, ...] = ("accuracy", "gold_logprob")


# The gold log-prob is ranked (and shown) to 4 decimals: a mean over thousands of token log-probs that differs by
# less than 1e-4 nats is float noise or an indistinguishable reward (two rewards that order every group alike train
# the same adapter up to ~1e-7), so such candidates are a tie, broken by the candidate id like any other.
GOLD_LOGPROB_DECIMALS = 4


def _value(value: float | None) -> float:
    return float("-inf") if value is None else float(value)


def rank_values(accuracy: float | None, gold_logprob: float | None, metric: str = "accuracy") -> tuple[float, float]:
    """A pair of selection scores under the ranking rule (higher is better): `metric` first, then the other one; a
    missing score ranks below every recorded one; the gold log-prob counts to `GOLD_LOGPROB_DECIMALS` decimals.
    Finalize ranks its recipes with this too."""
    if metric not in SELECTION_METRICS:
        raise ValueError(f"unknown selection metric {metric!r}; choose one of {', '.join(SELECTION_METRICS)}")
    gold = None if gold_logprob is None else round(float(gold_logprob), GOLD_LOGPROB_DECIMALS)
    pair = (_value(accuracy), _value(gold))
    return pair if metric == "accuracy" else (pair[1], pair[0])


def rank_key(entry: LeaderboardEntry, metric: str = "accuracy") -> tuple[float, float]:
    """The entry's score under the ranking rule (higher is better): the primary metric, then the other one."""
    return rank_values(entry.accuracy, entry.gold_logprob, metric)


def rank_entries(entries: Iterable[LeaderboardEntry], metric: str = "accuracy") -> list[LeaderboardEntry]:
    """Screened candidates, best first: selection accuracy, then the gold log-probability, then candidate id.

    The one ranking rule shared by the leaderboard, its tables, the feedback, the finalize phase and the report.
    Only `done` entries rank: a trial ASHA stopped (`stopped`, at `steps`) is listed with its step, never ranked, as
    its only scores are dev accuracies on the small report subset, not the selection split the others are ranked on.
    `metric="gold_logprob"` (a preset's `selection.metric`) makes the graded signal the primary key.
    """
    done = [e for e in entries if e.status == Status.DONE and e.accuracy is not None]
    return sorted(done, key=lambda e: (tuple(-v for v in rank_key(e, metric)), e.candidate_id))


def rank_labels(ranked: Sequence[LeaderboardEntry], metric: str = "accuracy") -> list[str]:
    """Display ranks for `rank_entries` output: genuine ties (equal on both keys, whatever their ids) share the rank
    of the first of them, shown as `=2`; the next entry after a tie of two at 2 is `4`."""
    keys = [rank_key(e, metric) for e in ranked]
    labels = []
    for key in keys:
        first = keys.index(key) + 1
        tied = keys.count(key) > 1
        labels.append(f"={first}" if tied else str(first))
    return labels
