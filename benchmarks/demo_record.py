"""What a finished `make demo` (or any run directory) measured, as JSON under benchmarks/results/: the ranked
leaderboard, each finalize job's dev and test accuracy, and the summary lines `reward-search report` prints (the
best recipe against the baseline and the untrained model, with paired CIs).

    .venv/bin/python benchmarks/demo_record.py runs/demo [--wall-seconds S] [--note TEXT] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reward_search.analysis.rundata import load_run  # noqa: E402
from reward_search.analysis.signal_section import summary_lines  # noqa: E402
from reward_search.candidates.records import rank_labels  # noqa: E402


def record(run_dir: Path) -> dict:
    data = load_run(run_dir)
    ranked = data.ranked()
    labels = rank_labels(ranked, data.config.selection.metric if data.config else "accuracy")
    board = [
        {"rank": label, "name": e.name, "round": e.round, "status": e.status, "accuracy": e.accuracy}
        for label, e in zip(labels, ranked, strict=True)
    ]
    finalize = json.loads((run_dir / "finalize.json").read_text(encoding="utf-8"))
    keys = ("status", "selection_accuracy", "test_accuracy", "test_n", "train_seconds", "cached")
    jobs = [{"name": j["name"], "kind": j["kind"], **{k: j["result"].get(k) for k in keys}} for j in finalize["jobs"]]
    best = finalize.get("best_recipe")
    return {"leaderboard": board, "best_recipe": best, "jobs": jobs, "summary": summary_lines(data)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--wall-seconds", type=float, help="the measured wall time of the run")
    parser.add_argument("--note", default="")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "demo_run.json")
    args = parser.parse_args()
    report = {"run_dir": args.run_dir.name, "wall_seconds": args.wall_seconds, "cpus": os.cpu_count()}
    report |= {"note": args.note}
    report |= record(args.run_dir)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print("\n".join(report["summary"]))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
