"""The statistics report: built from a real small run directory, every file and link resolves, and the page renders
in headless Chromium to a screenshot that is not blank; a run without finalize still reports, and says so.

The browser test needs Debian's `chromium` (`scripts/ensure_chromium.sh` installs it; `make test` runs it first).
"""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import image as mpimg

from reward_search import io
from reward_search.analysis.report import build_report
from reward_search.cli import main
from reward_search.config import ExperimentConfig, dump_config
from reward_search.search.leaderboard import LeaderboardCore

REPO = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURES = ("rounds", "progress", "curves", "forest", "mcnemar")


class _Refs(HTMLParser):
    """Every <img src> and <a href> of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img" and values.get("src"):
            self.images.append(values["src"])
        if tag == "a" and values.get("href"):
            self.links.append(values["href"])


def _refs(page: Path) -> _Refs:
    parser = _Refs()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def _assert_png(path: Path) -> np.ndarray:
    assert path.is_file(), f"missing image {path}"
    assert path.stat().st_size > 0 and path.read_bytes()[:8] == PNG_MAGIC, f"{path} is not a PNG"
    return mpimg.imread(path)


@pytest.fixture(scope="module")
def report(smoke_run: Path) -> Path:
    """The report of the session's real small run (tests/conftest.py smoke_run: 2 rounds x 2 candidates, 2 recipes,
    baseline, control, 2 seeds)."""
    assert main(["report", str(smoke_run), "--resamples", "1000"]) == 0
    return smoke_run / "report"


@pytest.mark.slow
def test_report_files_images_and_links_resolve(report: Path) -> None:
    for name in ("index.html", "report.md"):
        assert (report / name).stat().st_size > 0
    for name in FIGURES:
        _assert_png(report / "figures" / f"{name}.png")
    refs = _refs(report / "index.html")
    assert {f"figures/{n}.png" for n in FIGURES} <= set(refs.images)
    for src in refs.images:
        image = _assert_png(report / src)
        assert image.ndim == 3 and image.std() > 0, f"{src} is blank"
    sources = [h for h in refs.links if h.startswith("sources/")]
    assert sources, "the leaderboard links no reward source"
    for href in refs.links:
        if not href.startswith("#"):
            assert (report / href).is_file(), f"broken link {href}"
    for href in sources:
        compile((report / href).read_text(encoding="utf-8"), href, "exec")
    markdown = (report / "report.md").read_text(encoding="utf-8")
    for src in refs.images:
        assert f"]({src})" in markdown
    # each section is present, with the splits and the paper's figures stated
    for text in (
        "Paper versus this run",
        "Pairwise McNemar",
        "Seed statistics",
        "Strict versus flexible",
        "Reward-hacking audit",
        "Cost",
        "0.795 [0.756, 0.832]",
        "0.660 [0.635, 0.686]",
        "[0.777, 0.814]",
        "| test |",
        "| dev |",
        "reject (Holm)",
        "reject (Bonferroni)",
    ):
        assert text in markdown, text
    assert "finalize.json is missing" not in markdown


@pytest.mark.slow
def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    browser = shutil.which("chromium")
    if browser is None:
        pytest.fail("chromium is not installed: run scripts/ensure_chromium.sh (make test does)")
    shot = tmp_path / "shot.png"
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        (report / "index.html").resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    pixels = _assert_png(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels.std() > 0.05, "the screenshot is blank"
    assert (pixels.min(axis=2) < 0.5).mean() > 0.01, "the screenshot has almost no dark pixels (no text, no plots)"


def _tiny_run(folder: Path) -> None:
    """A run directory with a leaderboard of three screened candidates and their trials, and no finalize.json."""
    io.write_text(folder / "config.yaml", dump_config(ExperimentConfig()))
    io.write_json(folder / "manifest.json", {"seed": 1, "data": {"task": "gsm8k", "source": "test"}})
    io.write_json(folder / "driver_state.json", {"proposed_rounds": [1, 2], "proposer_usage": {"calls": 2}})
    board = LeaderboardCore(str(folder))
    for i, (round_, correct) in enumerate(((1, 2), (1, 3), (2, 4))):
        name = f"reward_{i}"
        source = f"def {name}(prompts, completions, **kwargs):\n    return [{i}.0 for _ in completions]\n"
        board.add_candidate(
            {"name": name, "source": source, "origin": {"proposer": "test", "round": round_}}, round_, "accepted", []
        )
        key = f"trial{i}"
        candidate_id = next(e.candidate_id for e in board.all() if e.name == name)
        board.update(
            candidate_id,
            status="done",
            accuracy=correct / 8,
            f1=2 * correct / (8 + correct),
            extraction_rate=1.0,
            correct=correct,
            n=8,
            trial_key=key,
            train_seconds=30.0 + i,
            gpu_hours=0.0,
            dev_curve=[0.1 * i, 0.2],
        )
        steps = np.arange(1, 21)
        io.write_parquet(
            folder / "trials" / key / "curves.parquet",
            [{"step": int(s), f"rewards/{name}/mean": 0.05 * s, "reward": 0.1 * s} for s in steps],
        )
        rows = [
            {
                "index": q,
                "question": f"q{q}",
                "gold": "1",
                "completion": "Step 1: 1 = 1\n<answer>1</answer>",
                "completion_tokens": 12,
                "extracted_strict": "1" if q < correct else None,
                "correct_strict": q < correct,
                "extracted_flexible": "1",
                "correct_flexible": q <= correct,
                "extracted": "1" if q < correct else None,
                "correct": q < correct,
            }
            for q in range(8)
        ]
        pd.DataFrame(rows).to_parquet(folder / "trials" / key / "selection.parquet")


def test_report_without_finalize_says_so(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _tiny_run(run)
    page = build_report(run, n_resamples=200)
    markdown = (page.parent / "report.md").read_text(encoding="utf-8")
    assert "finalize.json is missing" in markdown
    assert "reward_2" in markdown and "No finished seed re-runs" not in markdown  # no finalize sections at all
    for src in _refs(page).images:
        _assert_png(page.parent / src)
    assert (page.parent / "sources").is_dir() and len(list((page.parent / "sources").glob("*.py"))) == 3


def test_report_of_a_missing_run_directory_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------------
# Fidelity: the fidelity table, the red note on test ranking, the McNemar family and pairing by question id


def _fidelity_run(folder: Path, *overrides: str) -> dict[str, list[bool]]:
    """A run directory with finalize.json: three recipes (one the same job as another), a baseline and a random
    control, each with per-question records under `trials/<key>/` (selection.parquet when ranking on test)."""
    from reward_search.config import load_config

    _tiny_run(folder)
    config = load_config(None, list(overrides))
    io.write_text(folder / "config.yaml", dump_config(config))
    on_test = config.training.selection_split == "test"
    rng = np.random.default_rng(0)
    correct = {
        "top3": rng.random(40) < 0.7,
        "diverse": rng.random(40) < 0.5,
        "baseline": rng.random(40) < 0.3,
        "random": rng.random(40) < 0.05,
    }
    kinds = {"top3": "top_k", "diverse": "diverse", "baseline": "baseline", "random": "random"}
    jobs = []
    for name, vector in correct.items():
        order = list(range(40))[::-1] if name == "diverse" else list(range(40))  # stored in another order
        rows = [
            {"index": q, "gold": "1", "extracted": "1" if vector[q] else "2", "correct": bool(vector[q])} for q in order
        ]
        pd.DataFrame(rows).to_parquet(
            (folder / "trials" / f"k-{name}").mkdir(parents=True)
            or folder / "trials" / f"k-{name}" / ("selection.parquet" if on_test else "test.parquet")
        )
        result = {"status": "done", "trial_key": f"k-{name}", "selection_split": config.training.selection_split}
        jobs.append({"name": name, "kind": kinds[name], "members": [], "result": result})
    twin = {"status": "done", "trial_key": "k-top3", "same_job_as": "top3"}
    jobs.append({"name": "top3_full", "kind": "top_k", "members": [], "result": twin})
    io.write_json(
        folder / "finalize.json",
        {
            "selection_split": config.training.selection_split,
            "mcnemar": config.analysis.mcnemar,
            "best_recipe": "top3",
            "jobs": jobs,
        },
    )
    return {k: list(v) for k, v in correct.items()}


@pytest.mark.slow
def test_fidelity_table_lists_every_switch_and_test_ranking_is_red(tmp_path: Path) -> None:
    from reward_search.analysis.fidelity import KNOBS, SWITCHES

    run = tmp_path / "run"
    _fidelity_run(run, "training.selection_split=test", "training.eval_test=true", "analysis.mcnemar=paper")
    page = build_report(run, n_resamples=200)
    markdown = (page.parent / "report.md").read_text(encoding="utf-8")
    html = page.read_text(encoding="utf-8")
    assert "Fidelity to the paper's reference code" in markdown
    for knob in KNOBS:
        assert f"| {knob.key} |" in markdown, knob.key
    assert set(SWITCHES) >= {"proposer.feedback", "proposer.examples", "analysis.mcnemar", "training.selection_split"}
    assert "Known flaw" in markdown and 'class="warning"' in html and "ranks candidates and picks" in html
    # ranking on test: the test statistics come from the selection records instead of an empty section
    assert "No finalize job has test records" not in markdown
    # the paper's family: recipes only, chi-square, Bonferroni; the duplicate label is tested once
    assert (
        "the ensemble recipes only (analysis.mcnemar: paper" in markdown
        and "primary correction is Bonferroni" in markdown
    )
    assert "top3_full is the same job as top3" in markdown
    assert "McNemar's test on per-question test correctness, paired by question id, for each of the 1 pairs" in markdown


@pytest.mark.slow
def test_default_runs_rank_on_dev_with_every_configuration_in_the_family(tmp_path: Path) -> None:
    from reward_search.analysis.final_sections import final_stats
    from reward_search.analysis.rundata import load_run

    run = tmp_path / "run"
    correct = _fidelity_run(run)
    page = build_report(run, n_resamples=200)
    markdown = (page.parent / "report.md").read_text(encoding="utf-8")
    assert "Known flaw" not in markdown
    assert "every configuration: recipes, baseline and random control" in markdown and "is Holm" in markdown
    stats = final_stats(load_run(run), 200, 0)
    assert stats.summary is not None and len(stats.summary.mcnemar.comparisons) == 6  # 4 configurations, twin out
    pair = next(
        r.test for r in stats.summary.mcnemar.comparisons if {r.test.first, r.test.second} == {"top3", "diverse"}
    )
    first, second = (np.array(correct[n]) for n in (pair.first, pair.second))  # diverse was stored reversed
    assert pair.b == int((first & ~second).sum()) and pair.c == int((~first & second).sum())


def test_records_on_different_questions_get_no_paired_statistics(tmp_path: Path) -> None:
    from reward_search.analysis.final_sections import final_stats
    from reward_search.analysis.rundata import load_run

    run = tmp_path / "run"
    _fidelity_run(run)
    frame = pd.read_parquet(run / "trials" / "k-random" / "test.parquet")
    frame.loc[0, "index"] = 99
    frame.to_parquet(run / "trials" / "k-random" / "test.parquet")
    stats = final_stats(load_run(run), 200, 0)
    assert stats.summary is None
    assert any("'top3' and 'random' cover different questions" in note for note in stats.notes)
