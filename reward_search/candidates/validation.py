"""Validation of one candidate: static policy, then load in the sandbox, then behavioural probes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reward_search.candidates.bank import default_bank
from reward_search.candidates.candidate import EntryError, RewardCandidate, find_entry
from reward_search.candidates.escape import shown
from reward_search.candidates.policy import check_source
from reward_search.candidates.probes import run_probes
from reward_search.candidates.sandbox import CandidateRunner
from reward_search.candidates.settings import CandidatesConfig

STAGES: tuple[str, ...] = ("policy", "load", "probe", "accepted")


@dataclass(frozen=True)
class Verdict:
    """The outcome: `stage` is where a rejection happened, or ``accepted``; `candidate` carries the verdict."""

    name: str
    accepted: bool
    stage: str
    reasons: tuple[str, ...]
    probe: dict[str, Any] | None
    candidate: RewardCandidate | None  # None when no entry function could be identified

    @property
    def warnings(self) -> list[str]:
        return list((self.probe or {}).get("warnings", []))

    @property
    def layers(self) -> dict[str, Any]:
        """The containment layers that were active in the worker that ran the probes."""
        return dict((self.probe or {}).get("layers", {}))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "accepted": self.accepted,
            "stage": self.stage,
            "reasons": list(self.reasons),
            "warnings": self.warnings,
            "layers": self.layers,
            "probe": self.probe,
        }


def _reject(name: str, stage: str, reasons: list[str], candidate: RewardCandidate | None, probe=None) -> Verdict:
    if candidate is not None:
        candidate = candidate.with_verdict("rejected", tuple(f"{stage}: {r}" for r in reasons), probe)
    return Verdict(name, False, stage, tuple(reasons), probe, candidate)


def validate_source(
    source: str,
    runner: CandidateRunner,
    config: CandidatesConfig | None = None,
    name: str | None = None,
    **candidate_fields: Any,
) -> Verdict:
    """Check `source` (entry `name`, or the one function taking `completions`) all the way to a verdict."""
    config = config or CandidatesConfig()
    fallback_name = name or "candidate"
    report = check_source(source, config.policy)
    if not report.ok:
        candidate = None
        try:
            candidate = RewardCandidate.from_source(source, name, **candidate_fields)
        except (SyntaxError, EntryError, ValueError):
            pass
        return _reject(candidate.name if candidate else fallback_name, "policy", report.reasons(), candidate)
    try:
        entry = find_entry(source, name)
        candidate = RewardCandidate(name=entry, source=source, **candidate_fields)
    except (EntryError, ValueError) as exc:
        return _reject(fallback_name, "policy", [str(exc)], None)
    return validate_candidate(candidate, runner, config, policy_checked=True)


def validate_candidate(
    candidate: RewardCandidate,
    runner: CandidateRunner,
    config: CandidatesConfig | None = None,
    policy_checked: bool = False,
) -> Verdict:
    """Policy (unless already done), sandbox load and probes for a candidate; its entry is `candidate.name`."""
    config = config or CandidatesConfig()
    if not policy_checked:
        report = check_source(candidate.source, config.policy)
        if not report.ok:
            return _reject(candidate.name, "policy", report.reasons(), candidate)
    loaded = runner.load(candidate.source, candidate.name)
    if not loaded.ok:
        return _reject(candidate.name, "load", [f"{loaded.kind}: {loaded.error}"], candidate)
    layers = runner.facts(candidate.source, candidate.name)
    bank = default_bank(config.bank.path, config.bank.fingerprint)  # a BankError is the run's, not the candidate's
    try:
        probe = run_probes(
            runner,
            candidate.source,
            candidate.name,
            config.probes,
            bank=bank,
            key=candidate.id,
            min_calls=config.reprobe_every,
        )
    except Exception as exc:  # whatever a reply does to decoding or statistics, it rejects only this candidate
        return _reject(candidate.name, "probe", [f"probe failed: {type(exc).__name__}: {shown(exc, 200)}"], candidate)
    probe["layers"] = layers
    if not probe["passed"]:
        return _reject(candidate.name, "probe", list(probe["reasons"]), candidate, probe)
    accepted = candidate.with_verdict("accepted", (), probe)
    return Verdict(candidate.name, True, "accepted", (), probe, accepted)
