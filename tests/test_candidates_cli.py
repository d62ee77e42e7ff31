"""`rewards check` / `rewards score`: the exit-code and --json contract, run as a user would (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "corpus"
ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reward_search.candidates.cli", "rewards", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture
def rows(tmp_path) -> Path:
    path = tmp_path / "rows.jsonl"
    data = [
        {"prompt": "What is 2+2?", "completion": "<thinking>2+2=4</thinking><solution>4</solution>", "answer": "4"},
        {
            "prompt": [{"role": "user", "content": "What is 3+3?"}],
            "completion": [{"role": "assistant", "content": "<solution>7</solution>"}],
            "answer": "6",
        },
        {"prompt": "q", "completion": "", "answer": "1"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in data) + "\n")
    return path


def test_check_accepted_json():
    done = cli("check", str(CORPUS / "benign" / "regex_solution_match.py"), "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out) == {"name", "accepted", "stage", "reasons", "warnings", "layers", "probe"}
    assert out["accepted"] is True and out["name"] == "solution_reward" and out["reasons"] == []


def test_check_rejected_names_the_line():
    done = cli("check", str(CORPUS / "hostile" / "import_os_system.py"), "--json")
    assert done.returncode == 1
    out = json.loads(done.stdout)
    assert out["accepted"] is False and out["stage"] == "policy" and out["probe"] is None
    assert out["reasons"][0].startswith("line 4:")
    human = cli("check", str(CORPUS / "hostile" / "constant.py"))
    assert human.returncode == 1 and "rejected: reward at probe" in human.stdout


def test_check_hostile_gets_a_verdict_within_seconds():
    start = time.monotonic()
    done = cli("check", str(CORPUS / "hostile" / "cpu_bomb.py"), "--json")
    assert done.returncode == 1 and json.loads(done.stdout)["stage"] == "probe"
    assert time.monotonic() - start < 15


def test_check_usage_errors(tmp_path):
    assert cli("check", str(tmp_path / "missing.py")).returncode == 2
    assert "no such file" in cli("check", str(tmp_path / "missing.py")).stderr
    assert cli("check").returncode == 2  # argparse
    named = cli("check", str(CORPUS / "benign" / "closure_factory.py"), "--name", "make_tag_counter", "--json")
    assert named.returncode == 1  # wrong entry: rejected, not a usage error
    missing_name = cli("check", str(CORPUS / "benign" / "closure_factory.py"), "--name", "nope", "--json")
    assert missing_name.returncode == 1 and "no top-level function" in json.loads(missing_name.stdout)["reasons"][0]


def test_score_several_rewards_in_one_session(rows):
    done = cli(
        "score",
        str(CORPUS / "benign" / "regex_solution_match.py"),
        str(CORPUS / "hostile" / "monkeypatch_re.py"),
        str(CORPUS / "benign" / "lru_cache_parse.py"),
        "--completions",
        str(rows),
        "--json",
    )
    assert done.returncode == 1, done.stderr  # the hostile one produced no scores
    out = json.loads(done.stdout)["rewards"]
    assert out["solution_reward"] == {"scores": [2.0, 0.0, 0.0], "error": None}
    assert out["cached_answer_reward"] == {"scores": [1.0, 0.0, -0.25], "error": None}
    assert out["reward"]["scores"] is None and "policy" in out["reward"]["error"]


def test_score_all_ok_and_human_output(rows):
    done = cli("score", str(CORPUS / "benign" / "regex_solution_match.py"), "--completions", str(rows))
    assert done.returncode == 0 and done.stdout.strip() == "solution_reward: 2 0 0"


def test_score_bad_rows_are_usage_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "completion": "c"}\n')
    done = cli("score", str(CORPUS / "benign" / "regex_solution_match.py"), "--completions", str(bad))
    assert done.returncode == 2 and "bad.jsonl:1: missing answer" in done.stderr
    assert cli("score", str(CORPUS / "benign" / "regex_solution_match.py")).returncode == 2


def test_cli_imports_stay_light():
    code = "import sys, reward_search.candidates.cli, reward_search.candidates.rewards; print(sorted(sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    loaded = set(json.loads(done.stdout.replace("'", '"')))
    assert not loaded & {"torch", "transformers", "ray", "trl", "datasets", "litellm"}


def test_parser_wiring():
    import argparse

    from reward_search.candidates.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["rewards", "check", "f.py", "--name", "n", "--json"])
    assert (args.command, args.rewards_command, args.file, args.name, args.json) == (
        "rewards",
        "check",
        "f.py",
        "n",
        True,
    )


def test_doctor_reports_the_layers_of_a_real_worker():
    proc = cli("doctor", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True and report["host"]["pyseccomp"].endswith("pyseccomp.py")
    assert report["layers"]["seccomp"] is True and report["layers"]["rlimits"] is True
    text = cli("doctor")
    assert text.returncode == 0 and text.stdout.startswith("sandbox layers: seccomp")


def test_check_json_names_the_active_layers_and_warnings():
    proc = cli("check", str(CORPUS / "benign" / "length_band_shaping.py"), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    verdict = json.loads(proc.stdout)
    assert verdict["layers"]["seccomp"] is True and verdict["layers"]["audit_hook"] is True
    assert isinstance(verdict["warnings"], list)
    assert verdict["probe"]["order_independent"] is True and verdict["probe"]["calls"] >= 25
    # A length band ties a gold and a slip of the same length: decisive pairs are few, none of them anti-correct.
    assert verdict["probe"]["pairs_wrong_preferred"] * 2 <= verdict["probe"]["pairs"]
    assert verdict["probe"]["prescreen"]["applicable"] and len(verdict["probe"]["prescreen"]["signature"]) == 32


POD_SETS = (
    "--set",
    "candidates.sandbox.namespaces=false",
    "--set",
    "candidates.sandbox.network_namespace=false",
    "--set",
    "candidates.sandbox.distinct_uids=false",
    "--set",
    "candidates.sandbox.python_guards=false",
)


def test_doctor_says_which_layers_are_the_boundary_and_emulates_a_pod():
    text = cli("doctor")
    assert "  boundary: seccomp (filtered by argument), parent checks, death with the parent" in text.stdout
    assert "policy and audit hook: a lint" in text.stdout
    pod = cli("doctor", "--json", *POD_SETS)
    assert pod.returncode == 0, pod.stderr
    report = json.loads(pod.stdout)
    layers = report["layers"]
    assert layers["pidns"] is False and layers["netns"] is False and layers["audit_hook"] is False
    assert layers["seccomp"] is True and layers["pdeathsig"] is True
    assert "no namespaces" in report["boundary"]


def test_check_takes_an_experiment_file_and_set(tmp_path):
    experiment = tmp_path / "exp.yaml"
    experiment.write_text("candidates:\n  probes:\n    max_ms_per_completion: 0.001\n")
    path = str(CORPUS / "benign" / "regex_solution_match.py")
    slow = cli("check", path, "--json", "--experiment", str(experiment))
    assert slow.returncode == 1 and "too slow" in json.loads(slow.stdout)["reasons"][0]
    fixed = cli(
        "check", path, "--json", "--experiment", str(experiment), "--set", "candidates.probes.max_ms_per_completion=50"
    )
    assert fixed.returncode == 0, fixed.stdout
    pod = cli("check", path, "--json", *POD_SETS)
    assert pod.returncode == 0 and json.loads(pod.stdout)["layers"]["pidns"] is False
    bad = cli("check", path, "--set", "candidates.sandbox.nope=1")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown key" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_every_benign_reward_accepted_by_the_real_cli(tmp_path):
    """The whole benign corpus through `reward-search rewards score` (each file validated, then scored)."""
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"prompt": "2+2?", "completion": "<solution>4</solution>", "answer": "4"}) + "\n")
    files = sorted(str(p) for p in (CORPUS / "benign").glob("*.py"))
    command = [str(Path(sys.executable).with_name("reward-search")), "rewards", "score", *files]
    done = subprocess.run([*command, "--completions", str(rows), "--json"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    results = json.loads(done.stdout)["rewards"]
    assert len(results) == len(files) >= 50
    assert all(r["scores"] is not None for r in results.values())
