"""`reward-search report RUN_DIR`: an HTML and a Markdown report with PNG figures, from the run directory alone.

`build_report` loads the run (`rundata`), builds the sections (`search_sections`, `final_sections`,
`audit_sections`, `paper`), draws the figures, and fills the page templates under `templates/`. Every file is
written atomically, so a report being rebuilt is never half old and half new within a file.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path
from string import Template

from reward_search import io
from reward_search.analysis import audit_sections, final_sections, search_sections
from reward_search.analysis.document import Paragraph, Section, Table, fmt, render_html, render_markdown
from reward_search.analysis.fidelity import fidelity_section
from reward_search.analysis.paper import paper_section
from reward_search.analysis.rundata import RunData, load_run
from reward_search.analysis.signal_section import signal_section
from reward_search.analysis.stats import DEFAULT_RESAMPLES

REPORT_DIR = "report"


def _template(name: str) -> Template:
    return Template(resources.files("reward_search.analysis").joinpath("templates", name).read_text("utf-8"))


def task_label(data: RunData) -> str:
    """How the report names the run's task: its display name from the data manifest ("GSM8K", a JSONL task's name)."""
    source = data.manifest.get("data") or {}
    return str(source.get("display_name") or source.get("task") or "—")


def on_gsm8k(data: RunData) -> bool:
    """Whether the run is on GSM8K, the only task the paper's published numbers can be compared with."""
    return ((data.manifest.get("data") or {}).get("task") or "gsm8k") == "gsm8k"


def overview_section(data: RunData) -> Section:
    """What was run (model, data, seed, versions, splits) and what the run directory lacks."""
    section = Section("overview", "Run")
    config, manifest = data.config, data.manifest
    splits = (manifest.get("data") or {}).get("splits") or {}  # name -> {size, sha256}
    usage = data.driver_state.get("proposer_usage") or {}
    source = manifest.get("data") or {}
    rows = [
        ("run directory", str(data.run_dir)),
        ("model", config.model.spec if config is not None else "—"),
        ("data", f"{task_label(data)} from {source.get('source', '—')}"),
        ("split sizes", ", ".join(f"{k} {v.get('size')}" for k, v in splits.items()) or "—"),
        ("selection split", search_sections.split_label(data.selection_split)),
        ("seed", fmt(manifest.get("seed"))),
        ("rounds proposed", ", ".join(str(r) for r in data.driver_state.get("proposed_rounds", [])) or "—"),
        ("proposer", (data.driver_state.get("proposer_state") or {}).get("kind", "—")),
        ("proposer calls", fmt(usage.get("calls"))),
        ("candidates", str(len(data.entries))),
        ("finalize", "finished " + str(data.finalize.get("finished")) if data.finalize else "missing"),
        ("versions", ", ".join(f"{k} {v}" for k, v in (manifest.get("versions") or {}).items()) or "—"),
    ]
    section.add(Table(("field", "value"), tuple(rows)))
    section.add(*(Paragraph(line, note=True) for line in data.missing))
    return section


def build_sections(data: RunData, out: Path, n_resamples: int, seed: int) -> list[Section]:
    """Every section of the report, drawing its figures under `out/figures` and sources under `out/sources`."""
    links = search_sections.write_sources(data, out)
    stats = final_sections.final_stats(data, n_resamples, seed)
    audited = audit_sections.audited(data)
    sections = [
        overview_section(data),
        fidelity_section(data.config),
        *([paper_section(data, stats)] if on_gsm8k(data) else []),
        search_sections.round_section(data, out),
        search_sections.progress_section(data, out),
        search_sections.leaderboard_section(data, links),
        search_sections.curves_section(data, out),
    ]
    if data.finalize is None:
        sections.append(
            Section("finalize", "Finalize").add(
                Paragraph(
                    "finalize.json is missing: the finalize phase (ensembles, baseline, random control, seeds, test "
                    "evaluation) has not run for this run directory, or it is disabled. Run `reward-search finalize "
                    f"{data.run_dir}` and rebuild the report.",
                    note=True,
                )
            )
        )
    else:
        sections += [
            signal_section(data, n_resamples, seed),
            final_sections.ensembles_section(data, stats, out),
            final_sections.controls_section(data, out, n_resamples, seed),
            final_sections.mcnemar_section(stats, out),
            final_sections.seeds_section(data),
        ]
    sections += [
        audit_sections.format_section(audited),
        audit_sections.hacking_section(audited),
        search_sections.cost_section(data),
    ]
    return sections


def build_report(run_dir: str | Path, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Path:
    """Write `report/index.html` and `report/report.md` (with figures and sources) for a run; returns the HTML path.

    Raises `UserError` when `run_dir` is not a run directory.
    """
    data = load_run(run_dir)
    out = data.run_dir / REPORT_DIR
    sections = build_sections(data, out, n_resamples, seed)
    fields = {
        "title": f"reward-search report: {data.config.run.name if data.config is not None else data.run_dir.name} "
        f"on {task_label(data)}",
        "generated": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        "run_dir": str(data.run_dir),
    }
    toc, body = render_markdown(sections)
    io.write_text(out / "report.md", _template("report.md").substitute(fields, toc=toc, body=body))
    toc, body = render_html(sections)
    return io.write_text(out / "index.html", _template("report.html").substitute(fields, toc=toc, body=body))
