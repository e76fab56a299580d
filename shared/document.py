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
"""
from __future__ import annotations

import base64
import functools
import html
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from shared.artifacts import UnsafePath, safe_join
from shared.entities import EpochRow, JobStatus

TITLE = "EE599 HW3 — report"
FORMATS = ("md", "html", "pdf")


@dataclass(frozen=True)
class Section:
    """One job's part of the document: its report's markdown, whose links are relative to `folder`."""
    job: JobStatus
    markdown: str
    folder: Path
    title: str
    problem: int | None = None
    partial: bool = False   # the job has not succeeded: what finished is shown
    built: bool = False     # built now from the rows (no report.md of the job as it ended)

    @property
    def anchor(self) -> str:
        return f"job-{self.job.job_id}"


# --------------------------------------------------------------------------------------------------------------
# The sections: which jobs, in which order, with which markdown
# --------------------------------------------------------------------------------------------------------------


def partial_note(state: str) -> str:
    return f"> **Partial:** the job is {state}; what finished is shown."


def _with_note(markdown: str, note: str) -> str:
    """`note` right under the report's title (its first line, when that is a `# ` heading), else on top."""
    first, sep, rest = markdown.partition("\n")
    if first.startswith("# "):
        return f"{first}\n\n{note}\n\n{rest.lstrip(chr(10))}"
    return f"{note}\n\n{markdown}"


def job_section(job: JobStatus, folder: Path, kind: Any | None,
                rows: Callable[[], Sequence[EpochRow]]) -> Section:
    """The part of `job`: report.md from `folder` once the job has ended, else `kind.report(job, rows())` built
    now. `kind`: its JobKind (None when the kind is not loaded here: only a written report.md can be shown)."""
    title = getattr(kind, "title", "") or f"job kind {job.kind}"
    problem = getattr(kind, "problem", None)
    path = folder / "report.md"
    if job.finished and path.is_file():  # unfinished: a report.md there is from before a resume
        markdown, built = path.read_text(), False
    elif kind is not None:
        try:
            markdown, built = kind.report(job, rows()), True
        except Exception as exc:  # one part that cannot be built must not cost the whole document
            markdown, built = (f"# {title} (job `{job.job_id}`)\n\nThe report could not be built from the rows "
                               f"now: {type(exc).__name__}: {exc}\n"), True
    else:
        markdown, built = (f"# {title} (job `{job.job_id}`)\n\nNo report: the job kind {job.kind!r} is not "
                           "loaded here (HW3_KINDS) and the job has no report.md.\n"), True
    partial = job.state != "succeeded"
    if partial:
        markdown = _with_note(markdown, partial_note(job.state))
    return Section(job, markdown, folder, title, problem, partial, built)


def in_homework_order(sections: Iterable[Section]) -> list[Section]:
    """By problem number (the homework's order); jobs of other kinds after them, as given."""
    return sorted(sections, key=lambda s: (s.problem is None, s.problem or 0))


def collect(store, settings, job_ids: Sequence[str], kind_of: Callable[[str], Any]) -> list[Section]:
    """The sections of the jobs `job_ids` (full ids; repeats dropped) in the homework's order. `kind_of(name)`:
    the JobKind of a kind name (worker.kinds.get), raising LookupError for one not loaded here."""
    from shared.artifacts import job_dir

    sections = []
    for job_id in dict.fromkeys(job_ids):
        job = store.job_status(job_id)
        try:
            kind = kind_of(job.kind)
        except LookupError:
            kind = None
        sections.append(job_section(job, job_dir(settings, job_id), kind, lambda j=job_id: store.epochs(j)))
    return in_homework_order(sections)


# --------------------------------------------------------------------------------------------------------------
# The document's own parts: title with contents, appendix of settings (markdown, like the reports)
# --------------------------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _code(value: Any) -> str:
    text = str(value).replace("\n", " ")
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}" if text else ""


def _heading_of(section: Section) -> str:
    return section.title if section.title.lower().startswith("problem") or section.problem is None \
        else f"Problem {section.problem} — {section.title}"


def title_markdown(sections: Sequence[Section], generated: str) -> str:
    lines = [f"# {TITLE}", "",
             f"Generated {generated} by `hw3-submit report` from {len(sections)} job(s); the settings of each "
             "are in the appendix.", "",
             "| section | job | state | report |", "| :--- | :--- | :--- | :--- |"]
    for s in sections:
        report = ("partial, built now from the rows" if s.built else "partial") if s.partial else "complete"
        lines.append(f"| [{_cell(_heading_of(s))}](#{s.anchor}) | {_code(s.job.job_id)} | {s.job.state} | "
                     f"{report} |")
    partial = [s for s in sections if s.partial]
    if partial:
        lines += ["", f"> **Partial:** {len(partial)} of the {len(sections)} jobs have not succeeded (yet); their "
                  "parts show what finished."]
    return "\n".join(lines) + "\n"


def _flatten(params: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested params as (dotted key, value) pairs; a list of plain values stays one value."""
    if isinstance(params, dict) and params:
        return [pair for key, value in params.items() for pair in _flatten(value, f"{prefix}{key}.")]
    return [(prefix.rstrip(".") or "(none)", params)]


def _readable(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float, str)) for v in value):
        return ", ".join(str(v) for v in value) if value else "(empty)"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, separators=(", ", ": "), default=str)
    return str(value)


def appendix_markdown(sections: Sequence[Section]) -> str:
    lines = ["# Appendix: settings", "",
             "Each job as stored: its id, kind, state, times and the parameters it was submitted with. The files "
             "named in the text are in each job's folder, `artifacts/JOB/` under HW3_DATA "
             "(`hw3-submit fetch JOB --dest DIR` copies them).", ""]
    for s in sections:
        job = s.job
        lines += [f"## {_heading_of(s)}", "", f"| job | {_code(job.job_id)} |", "| :--- | :--- |",
                  f"| kind | {_cell(job.kind)} |", f"| state | {job.state} |",
                  f"| created | {_time(job.created_at)} |", f"| started | {_time(job.started_at)} |",
                  f"| finished | {_time(job.finished_at)} |"]
        if job.error:
            lines.append(f"| error | {_cell(job.error)} |")
        report = "report.md, written when the job ended" if not s.built else "built now from the rows"
        lines += [f"| report | {report} |", "", "| parameter | value |", "| :--- | :--- |"]
        lines += [f"| {_cell(key)} | {_cell(_readable(value))} |" for key, value in _flatten(job.params)]
        lines.append("")
    return "\n".join(lines)


def _time(stamp: str | None) -> str:
    """A stored ISO time as `2026-01-31 14:05:09 UTC` (as stored when it does not parse)."""
    if not stamp:
        return "—"
    try:
        when = datetime.fromisoformat(str(stamp))
    except ValueError:
        return _cell(stamp)
    zone = "UTC" if when.utcoffset() is not None and not when.utcoffset() else when.strftime("%z")
    return f"{when:%Y-%m-%d %H:%M:%S} {zone}".strip()


def _now() -> str:
    return datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()


# --------------------------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------------------------

# an inline link or image: [text](target "title") / ![alt](target); targets of the reports have no spaces
_LINK = re.compile(r'(!?)\[((?:[^\]\\]|\\.)*)\]\((<[^>]*>|[^)\s]+)((?:\s+"[^"]*")?)\)')


def _external(target: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target)) or target.startswith("//")


def relinked(markdown: str, folder: Path, base: Path) -> str:
    """`markdown` with its relative links and images (relative to `folder`) made relative to `base`; a target
    leaving `folder` becomes plain text."""
    def swap(m: re.Match) -> str:
        bang, text, target, title = m.groups()
        target = target.strip("<>")
        if _external(target) or target.startswith("#"):
            return m.group(0)
        try:
            path = safe_join(folder, target)
        except UnsafePath:
            return text or target
        rel = Path(os.path.relpath(path.absolute(), Path(base).absolute())).as_posix()
        return f"{bang}[{text}](<{rel}>{title})"
    return _LINK.sub(swap, markdown)


def markdown_document(sections: Sequence[Section], base: Path, generated: str | None = None) -> str:
    """The whole document as markdown; links made relative to `base` (where the file is read)."""
    parts = [title_markdown(sections, generated or _now())]
    for s in sections:
        parts.append(f'<a id="{s.anchor}"></a>\n\n' + relinked(s.markdown, s.folder, base))
    parts.append(appendix_markdown(sections))
    return "\n\n".join(p.rstrip("\n") for p in parts) + "\n"


# --------------------------------------------------------------------------------------------------------------
# Parsing, shared by HTML and PDF: images read and checked, links made text
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Figure:
    """An image of a report: its bytes once read and checked, or why it is not shown."""
    path: str
    alt: str
    data: bytes | None = None
    mime: str = ""
    size: tuple[int, int] = (0, 0)  # pixels
    problem: str = ""

    @property
    def uri(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def read_figure(folder: Path | None, target: str, alt: str) -> Figure:
    from PIL import Image, UnidentifiedImageError

    figure = Figure(target, alt)
    if folder is None or _external(target):
        figure.problem = "not a file of the job folder: not embedded"
        return figure
    try:
        path = safe_join(folder, target)
    except UnsafePath:
        figure.problem = "refused: it leaves the job folder"
        return figure
    if not path.is_file():
        figure.problem = f"not drawn (yet); hw3-submit plot {folder.name} draws the figures from the rows"
        return figure
    data = path.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt, figure.size = im.format, im.size
    except (UnidentifiedImageError, OSError):
        fmt = None
    if fmt not in ("PNG", "JPEG"):
        figure.problem = "not a PNG or JPEG image"
        return figure
    figure.data, figure.mime = data, f"image/{fmt.lower()}"
    return figure


def _parser():
    from markdown_it import MarkdownIt

    # raw HTML in a report is shown as text: nothing can reach outside the document through it
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def _text_of(children) -> str:
    return "".join(c.content for c in children if c.type in ("text", "code_inline"))


def _prepare(tokens, folder: Path | None, anchors: set[str]) -> None:
    """In place: images get meta["figure"] (read and checked); a paragraph holding only images gets
    meta["figures"]; links to files become their text (and the file's path when the text does not name it);
    links to anchors of the document stay; other links become text followed by their target."""
    from markdown_it.token import Token

    for i, tok in enumerate(tokens):
        if tok.type != "inline" or not tok.children:
            continue
        out = []
        children = tok.children
        j = 0
        while j < len(children):
            child = children[j]
            if child.type == "image":
                src = unquote(child.attrGet("src") or "")  # the parser percent-encodes links
                child.meta["figure"] = read_figure(folder, src, _text_of(child.children))
            if child.type != "link_open":
                out.append(child)
                j += 1
                continue
            close = next(k for k in range(j + 1, len(children)) if children[k].type == "link_close")
            inner = children[j + 1:close]
            href = unquote(child.attrGet("href") or "")
            if href.startswith("#") and href[1:] in anchors:
                out += children[j:close + 1]
            else:
                text = _text_of(inner).strip()
                shown = href if _external(href) or href.startswith("#") else href.split("?")[0]
                if text in (shown, Path(shown).name):
                    out.append(Token("code_inline", "code", 0, content=shown, markup="`"))
                else:
                    out += inner
                    out += [Token("text", "", 0, content=" ("), Token("code_inline", "code", 0, content=shown,
                                                                      markup="`"), Token("text", "", 0, content=")")]
            j = close + 1
        tok.children = out
        if out and all(c.type == "image" or (c.type in ("text", "softbreak") and not c.content.strip())
                       for c in out) and any(c.type == "image" for c in out):
            if i > 0 and tokens[i - 1].type == "paragraph_open":
                tokens[i - 1].meta["figures"] = True
                tokens[i + 1].meta["figures"] = True


@dataclass
class Parsed:
    """A part of the document, parsed: its tokens and the figures they show."""
    tokens: list
    anchor: str | None = None
    section: Section | None = None
    figures: list[Figure] = field(default_factory=list)


def parse_parts(sections: Sequence[Section], generated: str) -> list[Parsed]:
    md = _parser()
    anchors = {s.anchor for s in sections}
    parts = [Parsed(md.parse(title_markdown(sections, generated)), "contents")]
    for s in sections:
        parts.append(Parsed(md.parse(s.markdown), s.anchor, s))
    parts.append(Parsed(md.parse(appendix_markdown(sections)), "settings"))
    for part in parts:
        _prepare(part.tokens, part.section.folder if part.section else None, anchors)
        part.figures = [c.meta["figure"] for t in part.tokens if t.type == "inline"
                        for c in t.children or () if c.type == "image"]
    return parts


# --------------------------------------------------------------------------------------------------------------
# HTML: one file, nothing outside it
# --------------------------------------------------------------------------------------------------------------

CSS = """
*, *::before, *::after { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0; color: #1d1d1f; background: #fff; line-height: 1.5;
       font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 64rem; margin: 0 auto; padding: 1rem 1rem 3rem; }
h1 { font-size: 1.6rem; line-height: 1.25; margin: 2rem 0 1rem; padding-bottom: .3rem;
     border-bottom: 2px solid #d0d7de; }
h2 { font-size: 1.3rem; line-height: 1.3; margin: 1.8rem 0 .8rem; }
h3 { font-size: 1.1rem; margin: 1.5rem 0 .6rem; }
h4 { font-size: 1rem; }
p, li { overflow-wrap: break-word; }
a { color: #0550ae; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace;
       font-size: .88em; background: #f2f4f7; padding: .05em .3em; border-radius: 4px;
       overflow-wrap: anywhere; }
pre { background: #f6f8fa; padding: .75rem 1rem; overflow-x: auto; border-radius: 6px; }
pre code { background: none; padding: 0; overflow-wrap: normal; }
blockquote { margin: 1rem 0; padding: .6rem 1rem; border-left: 4px solid #d4a72c; background: #fff8e5; }
blockquote p { margin: .3rem 0; }
.table-wrap { overflow-x: auto; -webkit-overflow-scrolling: touch; margin: 1rem 0; max-width: 100%; }
table { border-collapse: collapse; font-size: .9rem; font-variant-numeric: tabular-nums; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid #d8dee4; vertical-align: top; text-align: left;
         white-space: nowrap; }
th { background: #f6f8fa; border-bottom: 2px solid #d0d7de; }
td.long { white-space: normal; min-width: 14rem; }
td code { overflow-wrap: normal; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafbfc; }
img { max-width: 100%; height: auto; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; margin: 1rem 0; align-items: flex-start; }
figure { margin: 0; flex: 1 1 22rem; max-width: 100%; text-align: center; }
.figures figure:only-child { flex-basis: 100%; }
figure img { display: block; margin: 0 auto; }
figcaption { font-size: .85rem; color: #57606a; margin-top: .25rem; }
.missing { display: inline-block; padding: .5rem .8rem; border: 1px dashed #bf8700; color: #7d4e00;
           background: #fffbeb; font-size: .9rem; }
section.problem, section.appendix { margin-top: 2.5rem; }
.generated { color: #57606a; font-size: .9rem; }
@media (max-width: 30rem) {
  body { font-size: 15px; }
  main { padding: .75rem .75rem 2rem; }
  h1 { font-size: 1.35rem; }
  table { font-size: .8rem; }
  th, td { padding: .25rem .4rem; }
}
@media print {
  @page { margin: 14mm 12mm 16mm; }
  body { font-size: 10pt; color: #000; }
  main { max-width: none; padding: 0; }
  section.problem, section.appendix { break-before: page; page-break-before: always; margin-top: 0; }
  h1 { margin-top: 0; }
  h1, h2, h3, h4 { break-after: avoid; page-break-after: avoid; }
  figure, img, tr, blockquote, pre { break-inside: avoid; page-break-inside: avoid; }
  img { max-height: 23cm; object-fit: contain; }
  .table-wrap { overflow: visible; }
  table { font-size: 7.5pt; }
  th, td { padding: .15rem .3rem; }
  td.long { min-width: 0; }
  a { color: inherit; text-decoration: none; }
  tbody tr:nth-child(even) { background: none; }
}
"""

LONG_CELL = 32  # characters: a table cell longer than this wraps (on a phone the table scrolls sideways)

# the browser itself refuses anything from outside: no fetch, no script, images only from data: URIs
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _html_renderer():
    md = _parser()
    esc = html.escape

    def image(self, tokens, idx, options, env):
        figure = tokens[idx].meta["figure"]
        in_row = env.get("figures", False)
        if figure.data is None:
            note = f'<span class="missing">figure {esc(figure.path)}: {esc(figure.problem)}</span>'
            return f"<figure>{note}</figure>" if in_row else note
        w, h = figure.size
        img = (f'<img src="{figure.uri}" alt="{esc(figure.alt)}" width="{w}" height="{h}">')
        if not in_row:
            return img
        caption = f"<figcaption>{esc(figure.alt)}</figcaption>" if figure.alt else ""
        return f"<figure>{img}{caption}</figure>"

    def paragraph_open(self, tokens, idx, options, env):
        if tokens[idx].meta.get("figures"):
            env["figures"] = True
            return '<div class="figures">\n'
        return self.renderToken(tokens, idx, options, env)

    def paragraph_close(self, tokens, idx, options, env):
        if tokens[idx].meta.get("figures"):
            env["figures"] = False
            return "</div>\n"
        return self.renderToken(tokens, idx, options, env)

    def softbreak(self, tokens, idx, options, env):
        return "\n"

    def td_open(self, tokens, idx, options, env):  # a cell of prose may wrap; numbers and names do not
        inline = tokens[idx + 1] if idx + 1 < len(tokens) else None
        if inline is not None and inline.type == "inline" and len(inline.content) > LONG_CELL:
            tokens[idx].attrJoin("class", "long")
        return self.renderToken(tokens, idx, options, env)

    md.add_render_rule("image", image)
    md.add_render_rule("paragraph_open", paragraph_open)
    md.add_render_rule("paragraph_close", paragraph_close)
    md.add_render_rule("softbreak", softbreak)
    md.add_render_rule("td_open", td_open)
    md.add_render_rule("table_open", lambda self, t, i, o, e: '<div class="table-wrap"><table>\n')
    md.add_render_rule("table_close", lambda self, t, i, o, e: "</table></div>\n")
    return md


def html_document(sections: Sequence[Section], generated: str | None = None) -> str:
    """The whole document as one HTML file: figures as data: URIs, the style inline, nothing fetched."""
    generated = generated or _now()
    md = _html_renderer()
    body = []
    for part in parse_parts(sections, generated):
        html_part = md.renderer.render(part.tokens, md.options, {})
        if part.anchor == "contents":
            body.append(f'<header id="contents">\n{html_part}</header>')
        elif part.anchor == "settings":
            body.append(f'<section class="appendix" id="settings">\n{html_part}</section>')
        else:
            body.append(f'<section class="problem" id="{part.anchor}">\n{html_part}</section>')
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
            "<meta name=\"referrer\" content=\"no-referrer\">\n"
            f"<title>{html.escape(TITLE)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
            + "\n".join(body) + "\n</main>\n</body>\n</html>\n")


# --------------------------------------------------------------------------------------------------------------
# PDF: reportlab's platypus, from the same tokens
# --------------------------------------------------------------------------------------------------------------

_FONTS_READY = False
SANS, MONO = "DejaVuSans", "DejaVuSansMono"


def _register_fonts() -> None:
    """DejaVu Sans and Mono, from matplotlib's own data (always installed with hw3): the PDF core fonts have
    no Greek, arrows or minus sign."""
    global _FONTS_READY
    if _FONTS_READY:
        return
    import matplotlib
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    for family in (SANS, MONO):
        for style, suffix in (((0, 0), ""), ((1, 0), "-Bold"), ((0, 1), "-Oblique"), ((1, 1), "-BoldOblique")):
            name = family + suffix
            pdfmetrics.registerFont(TTFont(name, str(ttf / f"{name}.ttf")))
            addMapping(family, *style, name)
    _FONTS_READY = True


def _styles():
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER
    from reportlab.lib.styles import ParagraphStyle

    base = ParagraphStyle("body", fontName=SANS, fontSize=9.5, leading=13.5, spaceAfter=5)
    return {
        "body": base,
        "h1": ParagraphStyle("h1", base, fontName=SANS + "-Bold", fontSize=16, leading=20, spaceBefore=4,
                             spaceAfter=10, keepWithNext=True),
        "h2": ParagraphStyle("h2", base, fontName=SANS + "-Bold", fontSize=12.5, leading=16, spaceBefore=10,
                             spaceAfter=6, keepWithNext=True),
        "h3": ParagraphStyle("h3", base, fontName=SANS + "-Bold", fontSize=10.5, leading=14, spaceBefore=8,
                             spaceAfter=4, keepWithNext=True),
        "h4": ParagraphStyle("h4", base, fontName=SANS + "-Bold", fontSize=9.5, spaceBefore=6, keepWithNext=True),
        "quote": ParagraphStyle("quote", base, backColor=colors.HexColor("#fff8e5"), borderPadding=(4, 6, 4, 6),
                                leftIndent=8, rightIndent=6, spaceBefore=4, spaceAfter=9,
                                borderColor=colors.HexColor("#d4a72c"), borderWidth=0),
        "caption": ParagraphStyle("caption", base, fontSize=8, leading=10, alignment=TA_CENTER,
                                  textColor=colors.HexColor("#555555"), spaceAfter=0),
        "missing": ParagraphStyle("missing", base, fontSize=8.5, textColor=colors.HexColor("#7d4e00"),
                                  backColor=colors.HexColor("#fffbeb"), borderPadding=4, spaceBefore=4,
                                  spaceAfter=8),
        "code": ParagraphStyle("code", base, fontName=MONO, fontSize=8, leading=10.5,
                               backColor=colors.HexColor("#f6f8fa"), borderPadding=5, spaceBefore=4, spaceAfter=9),
    }


def _plain(nodes) -> list[tuple[str, bool]]:
    """The text of inline tree nodes as (text, is code) pieces (for measuring)."""
    out = []
    for n in nodes or ():
        if n.type in ("text", "code_inline"):
            out.append((n.content, n.type == "code_inline"))
        elif n.children:
            out += _plain(n.children)
    return out


def _inline_markup(nodes, mono_size: float | None = None) -> str:
    """reportlab's paragraph markup of markdown-it inline tree nodes (images are shown as figures instead)."""
    esc = html.escape
    out = []
    for n in nodes or ():
        t = n.type
        if t == "text":
            out.append(esc(n.content, quote=False))
        elif t == "code_inline":
            size = f' size="{mono_size}"' if mono_size else ""
            out.append(f'<font face="{MONO}"{size} backColor="#eef1f4">{esc(n.content, quote=False)}</font>')
        elif t == "strong":
            out.append(f"<b>{_inline_markup(n.children, mono_size)}</b>")
        elif t == "em":
            out.append(f"<i>{_inline_markup(n.children, mono_size)}</i>")
        elif t == "link":  # only links to the document's own parts are left (see _prepare)
            out.append(f'<a href="{esc(n.attrs.get("href") or "")}" color="#0550ae">'
                       f"{_inline_markup(n.children, mono_size)}</a>")
        elif t == "softbreak":
            out.append(" ")
        elif t == "hardbreak":
            out.append("<br/>")
        elif t != "image":
            out.append(esc(n.content, quote=False))
    return "".join(out)


class _PdfBuilder:
    """Flowables of a part's tokens. Widths in points."""

    def __init__(self, width: float, height: float):
        self.width, self.height = width, height
        self.styles = _styles()
        self.heading = _flowable_classes()[0]

    # -- blocks -------------------------------------------------------------------------------------------------
    def blocks(self, node, style: str = "body") -> list:
        from reportlab.platypus import HRFlowable, ListFlowable, ListItem, Paragraph, Preformatted

        out = []
        for child in node.children:
            t = child.type
            if t == "heading":
                out.append(self.heading(_inline_markup(child.children[0].children), self.styles[child.tag],
                                    int(child.tag[1])))
            elif t == "paragraph":
                out += self.paragraph(child, style)
            elif t in ("bullet_list", "ordered_list"):
                items = [ListItem(self.blocks(item, style) or [Paragraph("", self.styles[style])])
                         for item in child.children]
                kw = ({"bulletType": "bullet", "start": "•"} if t == "bullet_list"
                      else {"bulletType": "1", "start": int(child.attrs.get("start", 1))})
                out.append(ListFlowable(items, leftIndent=14, bulletFontName=SANS, bulletFontSize=9, **kw))
            elif t == "blockquote":
                out += self.blocks(child, "quote")
            elif t == "table":
                out.append(self.table(child))
            elif t in ("fence", "code_block"):
                chars = max(20, int((self.width - 12) / (0.6 * 8)))
                out.append(Preformatted(child.content.rstrip("\n"), self.styles["code"], maxLineLength=chars,
                                        newLineChars="  "))
            elif t == "hr":
                out.append(HRFlowable(width="100%", thickness=0.6, color="#bbbbbb", spaceBefore=4, spaceAfter=8))
            elif child.children:
                out += self.blocks(child, style)
        return out

    def paragraph(self, node, style: str) -> list:
        from reportlab.platypus import Paragraph

        inline = node.children[0]
        figures = [c.meta["figure"] for c in inline.children if c.type == "image"]
        out = []
        if not node.meta.get("figures"):
            markup = _inline_markup(inline.children).strip()
            if markup:
                out.append(Paragraph(markup, self.styles[style]))
        if figures:
            out.append(self.figures(figures))
        return out

    # -- figures ------------------------------------------------------------------------------------------------
    def figure(self, fig: Figure, width: float, single: bool = False):
        """The figure with its caption: a list of flowables (a cell of a row of figures), or one shrinking
        flowable when it stands alone (`single`)."""
        from reportlab.platypus import Image, Paragraph

        if fig.data is None:
            missing = Paragraph(f"Figure <font face=\"{MONO}\">{html.escape(fig.path)}</font>: "
                                f"{html.escape(fig.problem)}", self.styles["missing"])
            return missing if single else [missing]
        w_px, h_px = fig.size
        if single and w_px < 1.6 * h_px:  # a figure of ordinary shape alone needs not the whole line
            width *= 0.75
        w = min(width, w_px * 0.75)  # never enlarged past 96 dpi
        h = w * h_px / w_px
        max_h = self.height * (0.55 if single else 0.45)
        if h > max_h:
            w, h = w * max_h / h, max_h
        caption = Paragraph(html.escape(fig.alt), self.styles["caption"]) if fig.alt else None
        if single:
            return _flowable_classes()[2](fig.data, w, h, caption)
        return [Image(io.BytesIO(fig.data), width=w, height=h)] + ([caption] if caption else [])

    def figures(self, figures: list[Figure]):
        from reportlab.platypus import Table, TableStyle

        if len(figures) == 1:
            return self.figure(figures[0], self.width, single=True)
        gap, per_row = 8, 2
        cell_w = (self.width - gap * (per_row - 1)) / per_row
        cells = [self.figure(f, cell_w) for f in figures]
        rows = [cells[i:i + per_row] for i in range(0, len(cells), per_row)]
        rows[-1] += [""] * (per_row - len(rows[-1]))
        table = Table(rows, colWidths=[cell_w + gap / 2] * per_row, hAlign="CENTER")
        table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("ALIGN", (0, 0), (-1, -1), "CENTER"),
                                   ("LEFTPADDING", (0, 0), (-1, -1), gap / 4),
                                   ("RIGHTPADDING", (0, 0), (-1, -1), gap / 4),
                                   ("BOTTOMPADDING", (0, 0), (-1, -1), 8)]))
        return table

    # -- tables -------------------------------------------------------------------------------------------------
    def table(self, node):
        from reportlab.lib import colors
        from reportlab.lib.enums import TA_CENTER, TA_LEFT, TA_RIGHT
        from reportlab.lib.styles import ParagraphStyle
        from reportlab.pdfbase.pdfmetrics import stringWidth
        from reportlab.platypus import Paragraph, Table, TableStyle

        rows = [tr for part in node.children for tr in part.children]  # thead/tbody -> tr
        cells = [[(cell.tag == "th", (cell.attrs.get("style") or ""), cell.children[0].children if cell.children
                   else []) for cell in tr.children] for tr in rows]
        ncols = max(len(r) for r in cells)
        pad = 3

        def natural(size: float) -> list[float]:
            widths = [0.0] * ncols
            for row in cells:
                for k, (head, _, inline) in enumerate(row):
                    w = 0.0
                    for text, code in _plain(inline):
                        font = MONO if code else (SANS + "-Bold" if head else SANS)
                        w += stringWidth(text, font, size * (0.9 if code else 1))
                    widths[k] = max(widths[k], w + 2 * pad + 1)
            return widths

        size = 8.5
        widths = natural(size)
        while sum(widths) > self.width and size > 6:
            size -= 0.5
            widths = natural(size)
        if sum(widths) > self.width:  # still too wide: the widest columns give way and wrap
            lo, hi = 0.0, max(widths)
            for _ in range(40):
                cap = (lo + hi) / 2
                lo, hi = (cap, hi) if sum(min(w, cap) for w in widths) <= self.width else (lo, cap)
            widths = [min(w, lo) for w in widths]
        aligns = {"right": TA_RIGHT, "center": TA_CENTER}
        data = []
        for row in cells:
            line = []
            for head, css, inline in row:
                align = next((v for k, v in aligns.items() if f"text-align:{k}" in css.replace(" ", "")), TA_LEFT)
                style = ParagraphStyle("cell", self.styles["body"], fontSize=size, leading=size * 1.25,
                                       spaceAfter=0, alignment=align,
                                       fontName=SANS + "-Bold" if head else SANS)
                line.append(Paragraph(_inline_markup(inline, mono_size=round(size * 0.9, 1)), style))
            data.append(line + [""] * (ncols - len(line)))
        header = sum(1 for part in node.children if part.type == "thead")
        table = Table(data, colWidths=widths, repeatRows=header, hAlign="LEFT")
        commands = [("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LEFTPADDING", (0, 0), (-1, -1), pad), ("RIGHTPADDING", (0, 0), (-1, -1), pad),
                    ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                    ("LINEBELOW", (0, 0), (-1, -1), 0.3, colors.HexColor("#d8dee4"))]
        if header:
            commands += [("BACKGROUND", (0, 0), (-1, header - 1), colors.HexColor("#eef1f4")),
                         ("LINEBELOW", (0, header - 1), (-1, header - 1), 0.8, colors.HexColor("#8c959f"))]
        if len(data) > header + 2:
            commands.append(("ROWBACKGROUNDS", (0, header), (-1, -1), [colors.white, colors.HexColor("#f8f9fa")]))
        table.setStyle(TableStyle(commands))
        table.spaceBefore, table.spaceAfter = 4, 10
        return table


@functools.cache
def _flowable_classes():
    """Flowables that need reportlab imported (only for PDFs), made once."""
    from reportlab.platypus import Flowable, Paragraph

    class Heading(Paragraph):
        def __init__(self, markup: str, style, level: int):
            super().__init__(markup, style)
            self.level = level

    class Anchor(Flowable):
        """Marks where a part starts: a named destination (for the contents' links) and an outline entry."""

        def __init__(self, key: str, title: str):
            super().__init__()
            self.key, self.title = key, title

        def wrap(self, *args):
            return 0, 0

        def draw(self):
            self.canv.bookmarkPage(self.key)
            self.canv.addOutlineEntry(self.title, self.key, level=0, closed=False)

    class FitFigure(Flowable):
        """An image centred above its caption, kept together; rather than leave the rest of a page empty it
        shrinks to the space left, down to `min_scale` of its size (else it goes to the next page whole)."""

        def __init__(self, data: bytes, width: float, height: float, caption, min_scale: float = 0.7):
            super().__init__()
            self.data, self.w0, self.h0, self.caption, self.min_scale = data, width, height, caption, min_scale
            self.spaceBefore, self.spaceAfter = 3, 10
            self.scale, self.cap_h = 1.0, 0.0

        def wrap(self, avail_w, avail_h):
            self.cap_h = self.caption.wrap(avail_w, avail_h)[1] + 2 if self.caption else 0.0
            self.scale = min(1.0, avail_w / self.w0)
            fit = (avail_h - self.cap_h) / self.h0
            if self.h0 * self.scale + self.cap_h > avail_h and fit >= self.min_scale * self.scale:
                self.scale = fit
            self.width, self.height = avail_w, self.h0 * self.scale + self.cap_h
            return self.width, self.height

        def draw(self):
            from reportlab.lib.utils import ImageReader

            w, h = self.w0 * self.scale, self.h0 * self.scale
            self.canv.drawImage(ImageReader(io.BytesIO(self.data)), (self.width - w) / 2, self.cap_h, w, h,
                                mask="auto")
            if self.caption:
                self.caption.drawOn(self.canv, 0, 0)

    return Heading, Anchor, FitFigure


def pdf_document(sections: Sequence[Section], generated: str | None = None) -> bytes:
    """The whole document as a PDF (US Letter): the title and contents, each part from a new page, footer
    "page N of M"."""
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.units import mm
    from reportlab.platypus import PageBreak, SimpleDocTemplate
    from markdown_it.tree import SyntaxTreeNode

    _register_fonts()
    heading_cls, anchor_cls, _ = _flowable_classes()
    generated = generated or _now()
    margin = 16 * mm
    parts = parse_parts(sections, generated)

    class Doc(SimpleDocTemplate):
        outline_level, headings = 0, 0

        def afterFlowable(self, flowable):  # h2 and h3 of a part in the outline, under the part
            if isinstance(flowable, heading_cls) and flowable.level in (2, 3) and self.outline_level >= 1:
                level = min(flowable.level - 1, self.outline_level)
                self.headings += 1
                key = f"heading-{self.headings}"
                self.canv.bookmarkPage(key)
                self.canv.addOutlineEntry(flowable.getPlainText(), key, level=level, closed=True)
                self.outline_level = level + 1
            elif isinstance(flowable, anchor_cls):
                self.outline_level = 1

    def build(total: int | None) -> tuple[bytes, int]:
        """One layout of the whole story; the footer says "page N of `total`"."""
        def footer(canv, doc):
            canv.saveState()
            canv.setFont(SANS, 7.5)
            canv.setFillColorRGB(0.4, 0.4, 0.4)
            canv.drawString(margin, 9 * mm, f"{TITLE} · generated {generated}")
            canv.drawRightString(doc.pagesize[0] - margin, 9 * mm, f"page {doc.page} of {total}")
            canv.restoreState()

        buf = io.BytesIO()
        doc = Doc(buf, pagesize=letter, leftMargin=margin, rightMargin=margin, topMargin=margin,
                  bottomMargin=margin + 4 * mm, title=TITLE, author="hw3-submit report",
                  subject="EE599 HW3: " + ", ".join(s.job.job_id for s in sections), creator="hw3 (reportlab)")
        builder = _PdfBuilder(doc.width, doc.height)
        story = []
        for part in parts:
            if story:
                story.append(PageBreak())
            title = ("Contents" if part.anchor == "contents" else "Appendix: settings"
                     if part.anchor == "settings" else _heading_of(part.section))
            story.append(anchor_cls(part.anchor, title))
            story += builder.blocks(SyntaxTreeNode(part.tokens))
        doc.build(story, onFirstPage=footer, onLaterPages=footer)
        return buf.getvalue(), doc.page

    # twice: the first layout counts the pages (the footer does not change the layout)
    _, total = build(None)
    pdf, pages = build(total)
    assert pages == total, (pages, total)
    return pdf


# --------------------------------------------------------------------------------------------------------------
# One call for the CLI
# --------------------------------------------------------------------------------------------------------------


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
