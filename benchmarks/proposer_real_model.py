"""How well a real model writes rewards: parse and validation rates, before and after self-correction.

Reads the transcripts a `reward-search run` with `proposer.kind=llm` left under `<run>/proposals/` and counts, per
proposer call, the rewards parsed from the reply and the ones that passed validation (policy, sandbox, probes).
A round's first call is "before self-correction"; every later call of the round was sent the errors of the calls
before it, so it is "after". Writes `benchmarks/results/proposer_real_model.json`.

    python benchmarks/proposer_real_model.py RUN_DIR [RUN_DIR ...] [--label qwen2.5-coder-1.5b-q4] [--command "..."]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

DUPLICATE = "same code as an earlier candidate"  # the proposer's note on a dropped resubmission
CORRECTION_HEADER = "# Problems with your earlier replies"  # proposers/prompts/llm_correction.txt
RESULTS = Path(__file__).resolve().parent / "results" / "proposer_real_model.json"


@dataclass
class Tally:
    """Counts over a set of proposer calls."""

    calls: int = 0
    replies: int = 0  # calls that returned text
    replies_parsed: int = 0  # replies holding at least one reward
    rewards_parsed: int = 0
    rewards_resubmitted: int = 0  # parsed, but the same code as an earlier candidate: dropped before validation
    rewards_validated: int = 0  # new rewards that went through validation
    rewards_accepted: int = 0
    rewards_accepted_now: int | None = None  # with --revalidate: the same rewards through today's completion step
    latency_s: float = 0.0
    completion_tokens: int = 0

    def add(self, transcript: dict) -> None:
        record = transcript.get("record") or {}
        verdicts = transcript.get("verdicts") or []
        self.calls += 1
        self.replies += transcript.get("reply") is not None
        self.replies_parsed += (record.get("parsed") or 0) > 0
        self.rewards_parsed += record.get("parsed") or 0
        self.rewards_resubmitted += sum(1 for note in record.get("notes") or [] if note.endswith(DUPLICATE))
        self.rewards_validated += len(verdicts)
        self.rewards_accepted += sum(1 for v in verdicts if v.get("accepted"))
        self.latency_s += record.get("latency_s") or 0.0
        self.completion_tokens += record.get("completion_tokens") or 0

    def rates(self) -> dict:
        return {
            "parse_rate": self.replies_parsed / self.replies if self.replies else None,
            "new_reward_rate": (self.rewards_parsed - self.rewards_resubmitted) / self.rewards_parsed
            if self.rewards_parsed
            else None,
            "validation_rate": self.rewards_accepted / self.rewards_validated if self.rewards_validated else None,
            "validation_rate_now": self.rewards_accepted_now / self.rewards_validated
            if self.rewards_validated and self.rewards_accepted_now is not None
            else None,
            "tokens_per_s": self.completion_tokens / self.latency_s if self.latency_s else None,
        }


def transcripts(run_dir: Path) -> list[Path]:
    """A run's call files in round and call order."""
    folder = run_dir / "proposals"
    files = sorted(folder.glob("round-*/call-*.json"), key=lambda p: (int(p.parent.name[6:]), int(p.stem[5:])))
    if not files:
        raise SystemExit(f"{folder}: no transcripts (was the run made with proposer.kind=llm?)")
    return files


def accepted_now(run_dir: Path, transcript: dict, runner: object) -> int:
    """How many of the call's validated rewards pass validation after today's module completion step."""
    from reward_search.candidates.candidate import RewardCandidate
    from reward_search.candidates.settings import DEFAULT_IMPORTS, CandidatesConfig
    from reward_search.candidates.validation import validate_candidate
    from reward_search.proposers.completion import complete_module, definitions
    from reward_search.proposers.llm import template

    known = definitions(template("example_reward.py.txt"))
    passed = 0
    for verdict in transcript.get("verdicts") or []:
        source = json.loads((run_dir / "candidates" / f"{verdict['candidate_id']}.json").read_text())["source"]
        code, _ = complete_module(source, known, DEFAULT_IMPORTS)
        candidate = RewardCandidate.from_source(code, verdict["name"])
        passed += validate_candidate(candidate, runner, CandidatesConfig()).accepted
    return passed


def summarise(run_dirs: list[Path], runner: object | None = None) -> dict:
    """Tallies for first calls, correction calls and all calls over the runs, plus one row per call."""
    first, later, total, rows = Tally(), Tally(), Tally(), []
    if runner is not None:
        first.rewards_accepted_now = later.rewards_accepted_now = total.rewards_accepted_now = 0
    for run_dir, path in [(folder, path) for folder in run_dirs for path in transcripts(folder)]:
        transcript = json.loads(path.read_text())
        record = transcript.get("record") or {}
        arm = first if int(path.stem[5:]) == 1 else later
        arm.add(transcript)
        total.add(transcript)
        if runner is not None:
            now = accepted_now(run_dir, transcript, runner)
            arm.rewards_accepted_now += now
            total.rewards_accepted_now += now
        rows.append(
            {
                "transcript": str(path),
                "outcome": record.get("outcome"),
                "format": record.get("reply_format"),
                "parsed": record.get("parsed"),
                "accepted": sum(1 for v in transcript.get("verdicts") or [] if v.get("accepted")),
                "rejections": [r for v in transcript.get("verdicts") or [] for r in v.get("reasons", [])][:4],
                "corrections_sent": CORRECTION_HEADER in transcript["request"]["messages"][-1]["content"],
                "latency_s": record.get("latency_s"),
            }
        )
    return {
        "before_self_correction": {**asdict(first), **first.rates()},
        "after_self_correction": {**asdict(later), **later.rates()},
        "all": {**asdict(total), **total.rates()},
        "calls": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    parser.add_argument("--label", default="", help="the model, as it should appear in the results")
    parser.add_argument("--command", default="", help="the command that made the run, for the record")
    parser.add_argument(
        "--revalidate", action="store_true", help="also validate each validated reward after module completion"
    )
    args = parser.parse_args()
    runs = [str(d) for d in args.run_dirs]
    if args.revalidate:
        from reward_search.candidates.sandbox import CandidateRunner

        with CandidateRunner() as runner:
            summary = summarise(args.run_dirs, runner)
    else:
        summary = summarise(args.run_dirs)
    figures = {"model": args.label, "command": args.command, "run_dirs": runs, **summary}
    for arm in ("before_self_correction", "after_self_correction", "all"):
        f = figures[arm]
        parse = "n/a" if f["parse_rate"] is None else f"{f['parse_rate']:.2f}"
        valid = "n/a" if f["validation_rate"] is None else f"{f['validation_rate']:.2f}"
        print(
            f"{arm:24s} calls {f['calls']:2d}  replies parsed {f['replies_parsed']}/{f['replies']} ({parse})  "
            f"resubmitted {f['rewards_resubmitted']}/{f['rewards_parsed']}  "
            f"validation passed {f['rewards_accepted']}/{f['rewards_validated']} ({valid})"
            + ("" if f["rewards_accepted_now"] is None else f", with completion {f['rewards_accepted_now']}")
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
