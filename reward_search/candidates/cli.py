"""`reward-search rewards check|score|doctor`: validate candidate reward files, score completions with them, and
report which sandbox layers this host supports.

Contract (scripts and tests rely on it): exit 0 = accepted / every reward produced scores, 1 = rejected / some
reward did not, 2 = usage error. ``--json`` prints exactly one JSON object on stdout. Imports stay light (no torch,
transformers or ray) so that both commands start fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from reward_search.candidates.escape import shown
from reward_search.candidates.prescreen import describe as prescreen_line
from reward_search.candidates.sandbox import CandidateRunner
from reward_search.candidates.settings import CandidatesConfig
from reward_search.candidates.validation import Verdict, validate_source
from reward_search.errors import UserError

BATCH = 64  # completions per sandbox call when scoring a file of rows


def register(subparsers: Any) -> None:
    """Add the `rewards` command (`check`, `score`, `doctor`) with its handler, `run_rewards`."""
    rewards = subparsers.add_parser("rewards", help="validate candidate reward files and score completions")
    commands = rewards.add_subparsers(dest="rewards_command", metavar="{check,score,doctor}", required=True)
    check = commands.add_parser("check", help="policy, sandbox and probe checks for one reward file")
    check.add_argument("file", metavar="FILE.py")
    check.add_argument("--name", help="the entry function (default: the only public function taking completions)")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    score = commands.add_parser("score", help="score completions with one or more reward files, in the sandbox")
    score.add_argument("files", nargs="+", metavar="FILE.py")
    score.add_argument("--completions", required=True, metavar="ROWS.jsonl", help="rows: prompt, completion, answer")
    score.add_argument("--json", action="store_true", help="print one JSON object")
    doctor = commands.add_parser("doctor", help="which sandbox layers this host supports (starts one real worker)")
    doctor.add_argument("--json", action="store_true", help="print one JSON object")
    for command in (check, score, doctor):
        _add_config_args(command)
    rewards.set_defaults(handler=run_rewards)


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    """The experiment file and `--set` overrides, as other commands take them (the `candidates` section applies)."""
    parser.add_argument("--experiment", metavar="FILE.yaml", help="experiment YAML file (defaults apply without)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set candidates.sandbox.namespaces=false (repeatable); "
        "namespaces, distinct_uids and python_guards off emulate an unprivileged pod",
    )


def _config_from(args: argparse.Namespace) -> CandidatesConfig:
    from reward_search.config import load_config

    experiment, overrides = getattr(args, "experiment", None), getattr(args, "overrides", [])
    if experiment is None and not overrides:
        return CandidatesConfig()
    return load_config(experiment, overrides).candidates


def _read_source(path: str) -> str:
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{path}: no such file")
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None


def read_rows(path: str) -> list[dict[str, Any]]:
    """Rows of a completions file; UserError naming the line for anything malformed."""
    text = _read_source(path)
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}:{number}: expected an object with prompt, completion and answer")
        missing = [key for key in ("prompt", "completion", "answer") if key not in row]
        if missing:
            raise UserError(f"{path}:{number}: missing {', '.join(missing)}")
        for key in ("prompt", "completion"):
            if not isinstance(row[key], str | list):
                raise UserError(f"{path}:{number}: {key} must be a string or a list of messages")
        if isinstance(row["answer"], int | float) and not isinstance(row["answer"], bool):
            row["answer"] = str(row["answer"])
        if not isinstance(row["answer"], str):
            raise UserError(f"{path}:{number}: answer must be a string")
        rows.append(row)
    if not rows:
        raise UserError(f"{path}: no rows")
    return rows


def _describe(verdict: Verdict) -> str:
    """The human-readable verdict: one verdict line, then reasons; every candidate-controlled string escaped."""
    name = shown(verdict.name, 200)
    if verdict.accepted and verdict.probe:
        p = verdict.probe
        lines = [
            f"accepted: {name} (scores {p['score_min']:g}..{p['score_max']:g}; mean on correct "
            f"{p['mean_correct']:.3g} vs wrong {p['mean_wrong']:.3g}; correct preferred in "
            f"{p['pairs_correct_preferred']} of {p['pairs']} decisive pairs; "
            f"{p['max_ms_per_completion']:.2f} ms/completion)"
        ]
    else:
        lines = [f"rejected: {name} at {verdict.stage}"]
        lines += [f"  - {shown(reason)}" for reason in verdict.reasons]
    lines += [f"  warning: {shown(warning)}" for warning in verdict.warnings]
    if verdict.probe and "prescreen" in verdict.probe:
        lines.append(f"  {prescreen_line(verdict.probe['prescreen'])}")
    if verdict.layers:
        lines.append(f"  sandbox layers: {describe_layers(verdict.layers)}")
    return "\n".join(lines)


LAYER_NAMES = (
    ("seccomp", "seccomp"),
    ("pidns", "pid-ns"),
    ("mountns", "mount-ns"),
    ("fs_hidden", "empty-root"),
    ("ipcns", "ipc-ns"),
    ("netns", "net-ns"),
    ("rlimits", "rlimits"),
    ("no_new_privs", "no-new-privs"),
    ("audit_hook", "audit-hook"),
)


def describe_layers(facts: dict[str, Any]) -> str:
    """`seccomp, pid-ns, ... (uid 204211); off: ...` from a worker's facts."""
    on = [label for key, label in LAYER_NAMES if facts.get(key) is True]
    off = [label for key, label in LAYER_NAMES if facts.get(key) is not True]
    text = ", ".join(on) + (f" (uid {shown(facts['uid'], 20)})" if "uid" in facts else "")
    return text + (f"; off: {', '.join(off)}" if off else "")


def boundary(facts: dict[str, Any]) -> str:
    """Which layers hold against a hostile candidate in this worker (SANDBOX.md): the OS and the parent, never
    the Python lint."""
    if facts.get("seccomp") is not True:
        return (
            "NONE: seccomp is off, so no layer holds against a hostile candidate (the policy and audit hook are a lint)"
        )
    held = [
        "seccomp (filtered by argument)",
        "parent checks",
        "death with the parent" if facts.get("pdeathsig") else "",
    ]
    held += ["rlimits" if facts.get("rlimits") else ""]
    depth = [
        label
        for key, label in (("pidns", "pid-ns"), ("fs_hidden", "empty-root"), ("netns", "net-ns"))
        if facts.get(key)
    ]
    text = ", ".join(h for h in held if h)
    text += f"; defence in depth: {', '.join(depth)}" if depth else "; no namespaces (as in an unprivileged pod)"
    return text + "; policy and audit hook: a lint"


def _doctor(args: argparse.Namespace, config: CandidatesConfig) -> int:
    """Start one real worker with the configured layers and report what this host gave it."""
    import os
    import platform

    from reward_search.candidates.oslayers import pyseccomp_path

    probe = "def reward(completions, **kw):\n    return [0.0 for _ in completions]\n"
    with CandidateRunner(config.sandbox, config.policy) as runner:
        loaded = runner.load(probe, "reward")
        facts = runner.facts(probe, "reward")
    report = {
        "ok": loaded.ok,
        "error": loaded.error,
        "host": {"euid": os.geteuid(), "kernel": platform.release(), "pyseccomp": pyseccomp_path()},
        "layers": facts,
        "boundary": boundary(facts),
        "start_ms": round(loaded.wall_ms, 1),
    }
    if args.json:
        print(json.dumps(report))
    elif not loaded.ok:
        print(f"sandbox worker failed to start: {shown(loaded.error)}")
    else:
        print(f"sandbox layers: {describe_layers(facts)}")
        print(f"  boundary: {boundary(facts)}")
        if not facts.get("seccomp"):
            print(f"  seccomp unavailable: {shown(facts.get('seccomp_reason'))} (install libseccomp2 and pyseccomp)")
        if not facts.get("pidns"):
            print("  namespaces off: switched off, or this host needs root or unprivileged user namespaces")
        print(f"  worker start {report['start_ms']} ms (euid {os.geteuid()}, kernel {platform.release()})")
    return 0 if loaded.ok else 1


def _check(args: argparse.Namespace, config: CandidatesConfig) -> int:
    source = _read_source(args.file)
    with CandidateRunner(config.sandbox, config.policy) as runner:
        verdict = validate_source(source, runner, config, name=args.name)
    print(json.dumps(verdict.to_json()) if args.json else _describe(verdict))
    return 0 if verdict.accepted else 1


def _score_rows(runner: CandidateRunner, verdict: Verdict, rows: list[dict[str, Any]]) -> dict[str, Any]:
    assert verdict.candidate is not None
    source, entry = verdict.candidate.source, verdict.candidate.name
    extra = sorted({key for row in rows for key in row} - {"prompt", "completion"})
    scores: list[float | None] = []
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        columns = {key: [row.get(key) for row in chunk] for key in extra}
        result = runner.call(source, entry, [r["prompt"] for r in chunk], [r["completion"] for r in chunk], **columns)
        if not result.ok or result.scores is None:
            return {"scores": None, "error": f"rows {start + 1}-{start + len(chunk)}: {result.kind}: {result.error}"}
        scores.extend(result.scores)
    return {"scores": scores, "error": None}


def _score(args: argparse.Namespace, config: CandidatesConfig) -> int:
    sources = [(path, _read_source(path)) for path in args.files]
    rows = read_rows(args.completions)
    results: dict[str, dict[str, Any]] = {}
    with CandidateRunner(config.sandbox, config.policy) as runner:  # one session: isolation is exercised
        for path, source in sources:
            verdict = validate_source(source, runner, config)
            key = verdict.name if verdict.name not in results else f"{verdict.name}@{Path(path).stem}"
            if not verdict.accepted:
                reasons = "; ".join(verdict.reasons)
                results[key] = {"scores": None, "error": f"rejected at {verdict.stage}: {reasons}"}
                continue
            results[key] = _score_rows(runner, verdict, rows)
    if args.json:
        print(json.dumps({"rewards": results}))
    else:
        for key, outcome in results.items():
            if outcome["error"] is not None:
                print(f"{shown(key)}: error: {shown(outcome['error'])}")
            else:
                values = " ".join("null" if s is None else f"{s:g}" for s in outcome["scores"])
                print(f"{shown(key)}: {values}")
    return 0 if all(outcome["scores"] is not None for outcome in results.values()) else 1


def run_rewards(args: argparse.Namespace, config: CandidatesConfig | None = None) -> int:
    """Run `rewards check|score`; returns the exit code (usage errors print one line on stderr and give 2)."""
    try:
        config = config or _config_from(args)
        if args.rewards_command == "check":
            return _check(args, config)
        if args.rewards_command == "doctor":
            return _doctor(args, config)
        return _score(args, config)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (`python -m reward_search.candidates.cli rewards ...`) until the main CLI wires it in."""
    parser = argparse.ArgumentParser(prog="reward-search")
    register(parser.add_subparsers(dest="command", required=True))
    return run_rewards(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
