"""The document's content, the same in every format: which jobs in which order with which markdown (`Section`,
`collect`), the title with its contents and the appendix of settings, the whole as markdown, and the parsing that
HTML and PDF share: links made text, images resolved inside their job folder and read (`Figure`, `parse_parts`).
"""
from __future__ import annotations

import base64
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
        one = len(partial) == 1
        lines += ["", f"> **Partial:** {len(partial)} of the {len(sections)} job{'' if len(sections) == 1 else 's'} "
                  f"{'has' if one else 'have'} not succeeded (yet); {'its part shows' if one else 'their parts show'} "
                  "what finished."]
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

