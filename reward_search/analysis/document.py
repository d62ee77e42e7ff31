"""A small document model for the report (sections of paragraphs, tables and figures) and its two renderings.

Section builders produce these blocks once; `render_markdown` and `render_html` turn them into the bodies that
fill the page templates, so the Markdown and the HTML report can never disagree on a number.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Link:
    """A table cell or text that links to a file relative to the report folder."""

    text: str
    href: str


Cell = str | Link


@dataclass(frozen=True)
class Paragraph:
    text: str
    note: bool = False  # rendered as a highlighted note (missing data, caveats)
    warning: bool = False  # rendered in red: a known flaw of the run's setting


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    """A PNG under the report folder (`path` is relative to it)."""

    path: str
    caption: str


Block = Paragraph | Table | Figure


@dataclass
class Section:
    anchor: str
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> Section:
        self.blocks.extend(blocks)
        return self


def fmt(value: float | int | None, digits: int = 3) -> str:
    """A number for a table: fixed digits, '—' for None/NaN."""
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _no_negative_zero(f"{value:.{digits}f}")


def fmt_signed(value: float, digits: int = 4) -> str:
    """A difference with its sign (`+0.0123`); one that rounds to zero prints `+0.0000`, never `-0.0000`."""
    return _no_negative_zero(f"{value:+.{digits}f}", signed=True)


def _no_negative_zero(text: str, signed: bool = False) -> str:
    """`-0.000` (a tiny negative value, rounded) as `0.000`, or `+0.000` for a signed figure."""
    if text.startswith("-") and not text[1:].strip("0."):
        return ("+" if signed else "") + text[1:]
    return text


def fmt_ci(low: float | None, high: float | None, digits: int = 3) -> str:
    return "—" if low is None or high is None else f"[{fmt(low, digits)}, {fmt(high, digits)}]"


# ---------------------------------------------------------------------------------------------------------------
# Markdown


def _md_cell(cell: Cell) -> str:
    if isinstance(cell, Link):
        return f"[{_md_escape(cell.text)}]({cell.href})"
    return _md_escape(cell)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        if block.warning:
            return f'> <span style="color:#b00020">**Known flaw:** {block.text}</span>'
        return f"> **Note:** {block.text}" if block.note else block.text
    if isinstance(block, Figure):
        return f"![{_md_escape(block.caption)}]({block.path})\n\n*{block.caption}*"
    lines = []
    if block.caption:
        lines += [f"*{block.caption}*", ""]
    lines.append("| " + " | ".join(_md_escape(c) for c in block.columns) + " |")
    lines.append("|" + "|".join("---" for _ in block.columns) + "|")
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
    return "\n".join(lines)


def render_markdown(sections: Sequence[Section]) -> tuple[str, str]:
    """(table of contents, body) in Markdown."""
    toc = "\n".join(f"- [{s.title}](#{s.anchor})" for s in sections)
    parts = []
    for section in sections:
        parts.append(f'<a id="{section.anchor}"></a>\n\n## {section.title}')
        parts += [_md_block(b) for b in section.blocks]
    return toc, "\n\n".join(parts)


# ---------------------------------------------------------------------------------------------------------------
# HTML


def _html_cell(cell: Cell) -> str:
    if isinstance(cell, Link):
        return f'<a href="{html.escape(cell.href)}">{html.escape(cell.text)}</a>'
    return html.escape(cell)


def _html_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        css = ' class="warning"' if block.warning else ' class="note"' if block.note else ""
        return f"<p{css}>{html.escape(block.text)}</p>"
    if isinstance(block, Figure):
        src, caption = html.escape(block.path), html.escape(block.caption)
        return f'<figure><img src="{src}" alt="{caption}"><figcaption>{caption}</figcaption></figure>'
    head = "".join(f"<th>{html.escape(c)}</th>" for c in block.columns)
    body = "".join("<tr>" + "".join(f"<td>{_html_cell(c)}</td>" for c in row) + "</tr>" for row in block.rows)
    caption = f"<caption>{html.escape(block.caption)}</caption>" if block.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(sections: Sequence[Section]) -> tuple[str, str]:
    """(table of contents, body) as HTML fragments."""
    toc = "".join(f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in sections)
    parts = []
    for section in sections:
        inner = "\n".join(_html_block(b) for b in section.blocks)
        parts.append(f'<section id="{section.anchor}">\n<h2>{html.escape(section.title)}</h2>\n{inner}\n</section>')
    return f"<ul>{toc}</ul>", "\n".join(parts)
