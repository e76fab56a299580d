"""The document as a PDF, drawn with reportlab's platypus from the same tokens as the HTML: real text in embedded
DejaVu fonts, tables that split across pages with their header repeated, figures scaled to the page, "page N of
M" in the footer and a PDF outline per problem."""
from __future__ import annotations

import functools
import html
import io
from collections.abc import Sequence
from pathlib import Path

from shared.document.assemble import TITLE, Figure, Section, _heading_of, _now, parse_parts

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
        elif t == "link":  # only links to the document's own parts are left (see assemble._prepare)
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

