"""The untrained model in every run: its fingerprint, the two caches, the finalize row, the report's comparisons
and the status line (in-process; the real finalize path is `test_finalize.py`'s small search)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from reward_search import io
from reward_search.analysis.final_sections import controls_section, untrained_summary_line
from reward_search.analysis.rundata import RunData
from reward_search.config import load_config
from reward_search.search import untrained as module
from reward_search.search.finalize import finalize_table
from reward_search.search.untrained import evaluate_or_reuse, outcome_lines, untrained_job, untrained_row
from reward_search.task import get_task
from reward_search.training.untrained import untrained_fingerprint

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "experiments" / "smoke.yaml"


def fingerprint(*overrides: str, spec: str | None = None) -> str:
    config = load_config(SMOKE, [*overrides, *([f"model.spec={spec}"] if spec else [])])
    return untrained_fingerprint(config, get_task(config.data).load_splits().manifest)


def test_fingerprint_is_model_data_and_eval_never_training():
    base = fingerprint()
    assert fingerprint("training.steps=9", "training.learning_rate=0.5", "finalize.seeds=1") == base
    for changed in (
        "training.eval_max_new_tokens=17",
        "training.eval_batch_size=2",
        "training.selection_size=5",
        "training.test_size=50",
        "training.generation=fast",
        "data.dev_seed=1",
        "model.dtype=bfloat16",
        "run.seed=1",  # a random-init model's weights come from the seed
        "finalize.controls_on_dev=false",  # test alone, as the other controls
    ):
        assert fingerprint(changed) != base, changed
    # a trained model's seed changes its training, not the base model's weights
    assert fingerprint("run.seed=1", spec="embedded") == fingerprint(spec="embedded")
    assert fingerprint(spec="embedded") != base


def records(correct_strict: list[bool], correct_flexible: list[bool], order: list[int] | None = None) -> list[dict]:
    order = order or list(range(len(correct_strict)))
    return [
        {
            "index": i,
            "gold": "1",
            "completion": "x",
            "extracted_strict": "1" if correct_strict[i] else None,
            "correct_strict": correct_strict[i],
            "extracted_flexible": "1" if correct_flexible[i] else "2",
            "correct_flexible": correct_flexible[i],
            "extracted": "1" if correct_strict[i] else None,
            "correct": correct_strict[i],
            "gold_logprob": -1.0,
        }
        for i in order
    ]


def summary(rows: list[dict]) -> dict:
    n, strict, flexible = len(rows), sum(r["correct_strict"] for r in rows), sum(r["correct_flexible"] for r in rows)
    return {
        "accuracy": strict / n,
        "f1": 2 * strict / (strict + n),
        "correct": strict,
        "n": n,
        "extraction_rate": strict / n,
        "gold_logprob": -1.0,
        "by_mode": {"strict": {"accuracy": strict / n, "correct": strict}, "flexible": {"accuracy": flexible / n}},
    }


class CountingEvaluator:
    """What `evaluate_untrained` returns, for a fixed fingerprint, counting its calls."""

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint, self.calls = fingerprint, 0

    def __call__(self, config_data: dict) -> dict:
        self.calls += 1
        test = records([i % 5 == 0 for i in range(20)], [i % 2 == 0 for i in range(20)])
        dev = records([False] * 4, [True, False, False, False])
        return {
            "fingerprint": self.fingerprint,
            "device": "cpu",
            "seconds": 1.5,
            "splits": {
                "selection": {"records": dev, "summary": summary(dev)},
                "test": {"records": test, "summary": summary(test)},
            },
        }


def test_evaluated_once_then_reused_from_the_run_directory_and_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(module, "user_cache_dir", lambda fp: tmp_path / "cache" / fp)
    config = load_config(SMOKE)
    fp = fingerprint()
    evaluator = CountingEvaluator(fp)
    row = untrained_job(config, tmp_path / "run", evaluator, verbose=False)
    result = row["result"]
    assert (evaluator.calls, result["source"], result["cached"]) == (1, "evaluated", False)
    assert (row["name"], row["kind"], result["fingerprint"], result["status"]) == ("untrained", "untrained", fp, "done")
    assert (result["test_accuracy"], result["test_flexible_accuracy"], result["test_n"]) == (0.2, 0.5, 20)
    assert (result["selection_accuracy"], result["selection_flexible_accuracy"], result["selection_n"]) == (
        0.0,
        0.25,
        4,
    )
    folder = tmp_path / "run" / "untrained" / fp
    assert (
        len(pd.read_parquet(folder / "test.parquet")) == 20 and len(pd.read_parquet(folder / "selection.parquet")) == 4
    )
    assert (tmp_path / "cache" / fp / "result.json").is_file()  # the copy other runs reuse
    stamp = (folder / "test.parquet").stat().st_mtime_ns

    again = untrained_job(config, tmp_path / "run", evaluator, verbose=False)["result"]
    assert (evaluator.calls, again["source"], again["cached"]) == (1, "run directory", True)
    assert (folder / "test.parquet").stat().st_mtime_ns == stamp
    other = untrained_job(config, tmp_path / "other", evaluator, verbose=False)["result"]
    assert (evaluator.calls, other["source"], other["test_flexible_accuracy"]) == (1, "user cache", 0.5)
    assert len(pd.read_parquet(tmp_path / "other" / "untrained" / fp / "test.parquet")) == 20

    # another eval setting is another fingerprint: evaluated afresh, in its own folder
    longer = load_config(SMOKE, ["training.eval_max_new_tokens=17"])
    evaluator.fingerprint = fingerprint("training.eval_max_new_tokens=17")
    assert untrained_job(longer, tmp_path / "run", evaluator, verbose=False)["result"]["source"] == "evaluated"
    assert evaluator.calls == 2 and len(list((tmp_path / "run" / "untrained").iterdir())) == 2


def test_an_incomplete_or_foreign_cache_is_not_reused_and_a_failure_is_a_failed_row(tmp_path, monkeypatch):
    monkeypatch.setattr(module, "user_cache_dir", lambda fp: tmp_path / "cache" / fp)
    config = load_config(SMOKE)
    fp = fingerprint()
    folder = tmp_path / "run" / "untrained" / fp
    io.write_json(folder / "result.json", {"fingerprint": "someone-else", "status": "done"})
    evaluator = CountingEvaluator(fp)
    assert evaluate_or_reuse(config, tmp_path / "run", fp, evaluator)[1] == "evaluated" and evaluator.calls == 1
    (folder / "selection.parquet").unlink()  # records missing: evaluated again
    (tmp_path / "cache" / fp / "selection.parquet").unlink()
    assert evaluate_or_reuse(config, tmp_path / "run", fp, evaluator)[1] == "evaluated" and evaluator.calls == 2

    def broken(config_data: dict) -> dict:
        raise RuntimeError("no GPU left")

    shutil.rmtree(tmp_path / "cache")
    row = untrained_job(config, tmp_path / "third", broken, verbose=False)
    assert row["result"]["status"] == "failed" and "no GPU left" in row["result"]["error"]
    assert outcome_lines({"jobs": [row]}) == ["untrained (no training): failed RuntimeError: no GPU left"]


@pytest.mark.parametrize(
    "overrides", [["training.selection_split=test", "training.eval_test=true"], ["finalize.controls_on_dev=false"]]
)
def test_on_test_alone_the_selection_numbers_are_cleared(tmp_path, overrides):
    from reward_search.training.untrained import _problems

    config = load_config(SMOKE, overrides)
    assert list(_problems(config, get_task(config.data).load_splits())) == ["test"]  # evaluated once, on test
    stored = {
        "fingerprint": "f",
        "summaries": {"selection": summary(records([True], [True])), "test": summary(records([False], [True]))},
    }
    result = untrained_row(config, tmp_path, stored, "evaluated")["result"]
    assert result["selection_accuracy"] is None and result["selection_n"] is None
    assert (result["test_accuracy"], result["test_flexible_accuracy"], result["selection_split"]) == (0.0, 1.0, "test")
    assert list(_problems(load_config(SMOKE), get_task(config.data).load_splits())) == ["selection", "test"]


def synthetic_run(folder: Path) -> RunData:
    """A finalize.json with a best recipe, a baseline and the untrained row, each with 40 test records (the recipe's
    stored in another question order)."""
    rng = np.random.default_rng(0)
    vectors = {"top2": rng.random(40) < 0.7, "baseline": rng.random(40) < 0.4, "untrained": np.zeros(40, dtype=bool)}
    flexible = {"top2": vectors["top2"], "baseline": vectors["baseline"], "untrained": rng.random(40) < 0.3}
    jobs = []
    for name, vector in vectors.items():
        order = list(range(40))[::-1] if name == "top2" else None
        rows = records(list(vector), list(flexible[name] | vector), order)
        where = folder / ("untrained/fp" if name == "untrained" else f"trials/k-{name}")
        io.write_parquet(where / "test.parquet", rows)
        result = {"status": "done", "trial_key": None if name == "untrained" else f"k-{name}", "selection_split": "dev"}
        result |= {"fingerprint": "fp", "trial_dir": "/moved/away"} if name == "untrained" else {}
        kind = {"top2": "top_k", "baseline": "baseline", "untrained": "untrained"}[name]
        jobs.append({"name": name, "kind": kind, "members": [], "result": result})
    finalize = {"selection_split": "dev", "best_recipe": "top2", "jobs": jobs}
    return RunData(folder, None, {}, {}, [], finalize)


def test_the_report_pairs_the_best_recipe_with_the_baseline_and_the_untrained_model(tmp_path):
    data = synthetic_run(tmp_path / "run")
    assert data.untrained is not None and data.job_records(data.untrained, "test") is not None  # found by fingerprint
    section = controls_section(data, tmp_path / "report", 500, 0)
    table = next(block for block in section.blocks if hasattr(block, "rows"))
    rows = {(r[0], r[1], r[2]): r for r in table.rows}
    assert set(rows) == {
        (a, b, m)
        for a, b in (("top2", "baseline"), ("top2", "untrained"), ("baseline", "untrained"))
        for m in ("strict", "flexible")
    }
    top2 = int(data.job_records(data.jobs[0], "test")["correct"].sum())
    strict = rows[("top2", "untrained", "strict")]
    assert strict[3].startswith(f"{top2 / 40:.3f}") and strict[4].startswith("0.000")
    assert strict[5].startswith(f"+{top2 / 40:.3f}") and (strict[6], strict[7]) == (str(top2), "0")  # b, c
    flexible = rows[("baseline", "untrained", "flexible")]
    assert flexible[4] != strict[4]  # the untrained model's flexible accuracy is not its strict one
    assert (tmp_path / "report" / "figures" / "controls.png").read_bytes()[:4] == b"\x89PNG"
    line = untrained_summary_line(data, 500, 0)
    assert line.startswith("untrained model: test accuracy strict 0.000 [0.000, 0.000], flexible ")
    assert (
        f"best recipe top2 {top2 / 40:.3f} (+{top2 / 40:.3f} [" in line
        and "baseline " in line
        and "40 questions" in line
    )


def test_finalize_table_and_status_show_the_untrained_row(tmp_path):
    config = load_config(SMOKE)
    stored = {
        "fingerprint": "abc",
        "summaries": {
            "selection": summary(records([False], [True])),
            "test": summary(records([False, True], [True, True])),
        },
    }
    row = untrained_row(config, tmp_path, stored, "user cache")
    baseline = {
        "name": "baseline",
        "kind": "baseline",
        "members": [],
        "result": {"status": "done", "test_accuracy": 0.25},
    }
    outcome = {"selection_split": "dev", "best_recipe": None, "jobs": [baseline, row]}
    expected = (
        "untrained (no training): test strict 0.500, flexible 1.000 on 2 questions; baseline test strict 0.250 "
        "(fingerprint abc, user cache)"
    )
    table = finalize_table(outcome)
    assert table.splitlines()[-1] == expected and "untrained" in table.splitlines()[2]
    (tmp_path / "finalize.json").write_text(json.dumps(outcome))
    assert module.status_lines(tmp_path) == [expected]
    assert module.status_lines(tmp_path / "nowhere") == []


@pytest.mark.parametrize("preset", ["paper.yaml", "paper-fidelity.yaml"])
def test_the_paper_presets_evaluate_the_untrained_model(preset):
    path = REPO / "experiments" / preset
    assert yaml.safe_load(path.read_text())["finalize"]["untrained"] is True  # stated, not only the default
    assert (
        load_config(path).finalize.untrained and not load_config(path, ["finalize.untrained=false"]).finalize.untrained
    )


def test_the_summary_leads_with_the_best_recipes_test_accuracy_against_the_baseline(tmp_path):
    """`make demo`'s summary: the best recipe's strict test accuracy against the baseline's on the same questions,
    with the paired CI and McNemar, right after the best reward; none without a baseline."""
    from reward_search.analysis.final_sections import best_vs_baseline_summary_line
    from reward_search.analysis.mcnemar import mcnemar_test
    from reward_search.analysis.signal_section import summary_lines

    data = synthetic_run(tmp_path / "run")
    top2 = data.job_records(data.jobs[0], "test").sort_values("index")["correct"].to_numpy()
    baseline = data.job_records(data.jobs[1], "test").sort_values("index")["correct"].to_numpy()
    line = best_vs_baseline_summary_line(data, 500, 0)
    difference = top2.mean() - baseline.mean()
    p_value = mcnemar_test(top2, baseline).p_value
    assert line.startswith(f"best recipe top2: test accuracy {top2.mean():.3f} [")
    assert f"vs baseline {baseline.mean():.3f}: {difference:+.3f} [" in line and f"McNemar p {p_value:.3g})" in line
    assert line.endswith("over 40 questions, strict")
    lines = summary_lines(data, 500, 0)
    assert lines[1] == line
    assert not any(text.startswith("random control") for text in lines)  # this finalize planned none
    data.finalize["jobs"] = [job for job in data.finalize["jobs"] if job["kind"] != "baseline"]
    assert best_vs_baseline_summary_line(RunData(data.run_dir, None, {}, {}, [], data.finalize), 500, 0) is None
