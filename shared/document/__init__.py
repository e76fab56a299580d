"""The homework as one document: the reports of several jobs, Problems 1–4 in the homework's order, then an
appendix of settings, as markdown, one self-contained HTML file or a PDF (`hw3-submit report JOB... --format`).

A job's part is its report.md, written when the job ended; a job without one (running, interrupted), or whose
file predates a resume, gets its kind's report built now from the rows, and a part of a job that did not
succeed is marked partial. Image links in a report are relative to its job folder: they are resolved inside
it (shared.artifacts.safe_join; nothing outside is read) and embedded. Links to the job's other files (CSV,
weights, other runs' curves) become their path in the folder, since a self-contained file cannot carry them.

Libraries, and why: markdown-it-py parses the markdown (CommonMark with tables; already installed as rich's
parser, so no new package; raw HTML in a report is escaped, not passed through). The HTML comes from its
renderer with a few rules (tables in a scrolling box, figures as <figure> with data: URIs). The PDF is drawn
with reportlab's platypus from the same tokens: real text in embedded DejaVu fonts (shipped with matplotlib,
so Greek letters and arrows print), tables that split across pages with their header repeated, figures
scaled to the page, "page N of M" in the footer and a PDF outline per problem. Pure Python wheels, no system
package.

The parts: assemble.py (the sections, their order, the title and appendix, the markdown, and the parsing both
formats share: links, images resolved and read), html.py (the HTML file and its style), pdf.py (reportlab).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from shared.document.assemble import (FORMATS, TITLE, Figure, Parsed, Section, appendix_markdown, collect,
                                      in_homework_order, job_section, markdown_document, parse_parts,
                                      partial_note, read_figure, relinked, title_markdown)
from shared.document.html import CSP, CSS, LONG_CELL, html_document
from shared.document.pdf import MONO, SANS, pdf_document

__all__ = ["CSP", "CSS", "FORMATS", "LONG_CELL", "MONO", "SANS", "TITLE", "Figure", "Parsed", "Section",
           "appendix_markdown", "collect", "html_document", "in_homework_order", "job_section",
           "markdown_document", "parse_parts", "partial_note", "pdf_document", "read_figure", "relinked", "render",
           "title_markdown"]


def render(sections: Sequence[Section], fmt: str, base: Path) -> bytes:
    """The document in `fmt` (md, html or pdf) as bytes; `base`: the folder the file will be read from (md's
    links are made relative to it)."""
    if fmt == "md":
        return markdown_document(sections, base).encode()
    if fmt == "html":
        return html_document(sections).encode()
    if fmt == "pdf":
        return pdf_document(sections)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
