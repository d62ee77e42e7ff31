"""The cascade policy (`search.prescreen.mode`): what the zero-training pre-screen decides before a trial is spent.

Pure decision functions over pre-screen records (candidates/prescreen.py); the driver applies them where it records
validated candidates.

* `off`: nothing is computed from the pre-screen here; `record` (the default): the decisions are computed and
  recorded as reasons ("would skip: ...") but every validated candidate is trained;
* `order`: a round's (steady: a batch's) accepted candidates are screened most promising first (AUC, then
  own_signal, higher first), and a candidate that behaves like one already screened or queued is skipped;
* `filter`: as `order`, and a candidate whose AUC is below `min_auc` or whose own signal (the share of bank groups
  where the candidate alone varies) is below `min_signal` is skipped.

"Behaves like": the Spearman rank correlation of two behaviour signatures (score vectors over the same bank) is at
least `novelty`. Two constant signatures behave alike (rho 1); a constant and a varying one do not (rho 0).
Planted candidates (the benchmark's controls) are never skipped; the baseline and the random control are finalize
jobs and never pass through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reward_search.candidates.records import LeaderboardEntry
from reward_search.candidates.status import FINISHED, WAITING, Status

ACTING_MODES = ("order", "filter")  # the modes whose decisions skip candidates


def _ranks(values: Sequence[float]) -> list[float]:
    """Average ranks (1-based), ties sharing the mean of their positions."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rho of two equal-length signatures; both constant: 1.0, exactly one constant: 0.0."""
    if len(a) != len(b):
        raise ValueError(f"signatures of different lengths ({len(a)} and {len(b)}): not over the same bank")
    ra, rb = _ranks(a), _ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    da, db = [x - ma for x in ra], [y - mb for y in rb]
    va, vb = sum(x * x for x in da), sum(y * y for y in db)
    if va == 0 or vb == 0:
        return 1.0 if va == vb else 0.0
    return sum(x * y for x, y in zip(da, db, strict=True)) / (va * vb) ** 0.5


@dataclass(frozen=True)
class Decision:
    """What the cascade decided for one validated candidate: `skip` (never trained) and why; `like`: the candidate
    it behaves like (its id), with `rho`."""

    skip: bool
    reason: str | None = None
    like: str | None = None
    rho: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"skip": self.skip, "reason": self.reason, "like": self.like, "rho": self.rho}


def _signature(prescreen: dict[str, Any] | None) -> list[float] | None:
    if not prescreen or not prescreen.get("applicable") or not prescreen.get("signature"):
        return None
    return [float(v) for v in prescreen["signature"]]


def peers(entries: Sequence[LeaderboardEntry]) -> list[LeaderboardEntry]:
    """The candidates a new one is compared with: screened or queued (validated, not skipped), with a signature."""
    return [e for e in entries if e.status in (*WAITING, *FINISHED) and _signature(e.prescreen) is not None]


def most_alike(prescreen: dict[str, Any] | None, others: Sequence[LeaderboardEntry]) -> tuple[LeaderboardEntry, float]:
    """The peer whose signature correlates most with this one's, and rho; ValueError when there is none."""
    own = _signature(prescreen)
    scored = []
    for other in others:
        theirs = _signature(other.prescreen)
        if own is not None and theirs is not None and len(theirs) == len(own) and other.prescreen:
            if other.prescreen.get("bank") == (prescreen or {}).get("bank"):  # same bank, same rows
                scored.append((spearman(own, theirs), other.candidate_id, other))
    if not scored:
        raise ValueError("no comparable peer")
    rho, _, best = max(scored, key=lambda item: (item[0], item[1]))
    return best, rho


def _below(prescreen: dict[str, Any], min_auc: float, min_signal: float) -> str | None:
    auc, own = prescreen.get("auc"), prescreen.get("own_signal")
    if auc is not None and auc < min_auc:
        return f"AUC {auc:.2f} < min_auc {min_auc:.2f}"
    if own is not None and own < min_signal:
        return f"own signal {own:.0%} < min_signal {min_signal:.0%}"
    return None


def decide(
    prescreen: dict[str, Any] | None, settings: Any, others: Sequence[LeaderboardEntry], planted: bool
) -> Decision:
    """The cascade's decision for a validated candidate with pre-screen `prescreen`, against the run's `others`
    (`peers`), under `settings` (config.PrescreenConfig). In `record` mode a skip is only noted (`skip` False)."""
    if settings.mode == "off" or not prescreen or not prescreen.get("applicable"):
        return Decision(skip=False)
    found: Decision | None = None
    if settings.mode == "filter" and (why := _below(prescreen, settings.min_auc, settings.min_signal)):
        found = Decision(skip=True, reason=f"filter: {why}")
    else:
        try:
            like, rho = most_alike(prescreen, others)
        except ValueError:
            like, rho = None, 0.0
        if like is not None and rho >= settings.novelty:
            found = Decision(
                True, f"novelty: behaves like {like.name} ({like.candidate_id}, rho {rho:.3f})", like.candidate_id, rho
            )
    if found is None:
        return Decision(skip=False)
    if planted:
        return Decision(False, f"{found.reason}; a planted control, trained anyway", found.like, found.rho)
    if settings.mode not in ACTING_MODES:
        return Decision(False, f"{found.reason}; mode {settings.mode}: trained anyway", found.like, found.rho)
    return found


def promise(prescreen: dict[str, Any] | None) -> tuple[float, float]:
    """The `order` key (higher first): AUC, then own_signal; no pre-screen ranks last."""
    if not prescreen or not prescreen.get("applicable"):
        return (float("-inf"), float("-inf"))
    auc, own = prescreen.get("auc"), prescreen.get("own_signal")
    return (float("-inf") if auc is None else float(auc), float("-inf") if own is None else float(own))


def order(ids: Sequence[str], prescreens: dict[str, dict[str, Any] | None]) -> list[str]:
    """`ids` most promising first (stable: equal promise keeps the proposer's order)."""
    return sorted(ids, key=lambda cid: tuple(-v for v in promise(prescreens.get(cid))))


def skipped_note(entry: LeaderboardEntry, entries: Sequence[LeaderboardEntry]) -> str | None:
    """For a skipped entry that behaves like another: that one's result now ("X: done 0.430"), else None."""
    cascade = (entry.probe or {}).get("cascade") or {}
    like = cascade.get("like")
    if entry.status != Status.SKIPPED or not like:
        return None
    other = next((e for e in entries if e.candidate_id == like), None)
    if other is None:
        return None
    result = f"{other.accuracy:.3f}" if other.accuracy is not None else "no score yet"
    return f"{other.name}: {other.status} {result}"
