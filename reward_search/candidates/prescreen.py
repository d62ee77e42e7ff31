"""The zero-training pre-screen: what a candidate does on the policy's own rollouts, measured before any training.

From the scores the probes already obtained on the bank (no extra calls):

* `auc`: the probability that a correct completion outscores a wrong one (ties count half), over the bank;
* `signal`: the share of the bank's groups whose total reward (the candidate's plus the base rewards') is not all
  equal, i.e. the groups TRL would not zero out at step 0 (with `base_signal` and `own_signal`, the same share for
  the base rewards alone and for the candidate alone);
* `signature`: the score vector over the bank's rows, in bank order (behavioural identity for novelty);
* `ms_per_completion`: the candidate's cost, measured by the parent.

A bank with no correct or no wrong completion for any question makes the pre-screen not applicable (stated, with
its reason), never zero.
"""

from __future__ import annotations

from typing import Any

from reward_search.candidates.bank import Bank

SIGNATURE_DECIMALS = 6


def auc(positives: list[float], negatives: list[float]) -> float | None:
    """Mann-Whitney AUC of `positives` over `negatives` (ties half); None when either side is empty."""
    if not positives or not negatives:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def predicted_signal(groups: list[list[float]], tolerance: float = 1e-9) -> float:
    """The share of groups whose totals are not all equal (within `tolerance`)."""
    if not groups:
        return 0.0
    return sum(max(g) - min(g) > tolerance for g in groups if g) / len(groups)


def _own_groups(rows: list[Any], scores: list[float]) -> list[list[float]]:
    groups: dict[int, list[float]] = {}
    for row, value in zip(rows, scores, strict=True):
        groups.setdefault(row.group, []).append(value)
    return list(groups.values())


def prescreen(bank: Bank, scored: list[tuple[Any, float]], ms_per_completion: float) -> dict[str, Any]:
    """The pre-screen record from the first-call scores of the bank's rows (`probe.row` >= 0)."""
    by_row = {probe.row: value for probe, value in scored if probe.row >= 0}
    rows = bank.rows
    reason = bank.applicable()
    if reason is not None or len(by_row) != len(rows):
        return {"applicable": False, "reason": reason or "not every bank row was scored"}
    scores = [by_row[i] for i in range(len(rows))]
    pairs = list(zip(rows, scores, strict=True))
    totals: dict[int, list[float]] = {}
    for row, value in zip(rows, scores, strict=True):
        totals.setdefault(row.group, []).append(value + row.base_reward)
    return {
        "applicable": True,
        "bank": bank.fingerprint,
        "auc": auc([v for r, v in pairs if r.correct], [v for r, v in pairs if not r.correct]),
        "signal": predicted_signal(list(totals.values())),
        "base_signal": predicted_signal([[r.base_reward for r in g] for g in bank.groups]),
        "own_signal": predicted_signal(_own_groups(rows, scores)),
        "signature": [round(v, SIGNATURE_DECIMALS) for v in scores],
        "ms_per_completion": ms_per_completion,
    }


def describe(record: dict[str, Any] | None) -> str:
    """One line for the CLI, the feedback and the report."""
    if not record:
        return "pre-screen: not run"
    if not record.get("applicable"):
        return f"pre-screen: not applicable ({record.get('reason', 'no bank')})"
    value = record.get("auc")
    shown = "n/a" if value is None else f"{value:.2f}"
    base, own = record.get("base_signal", 0.0), record.get("own_signal", 0.0)
    alone = f"base rewards alone {base:.0%}, this reward alone {own:.0%}"
    return (
        f"pre-screen: AUC {shown} on the policy's rollouts, signal {record['signal']:.0%} of groups ({alone}), "
        f"{record['ms_per_completion']:.2f} ms/completion"
    )
