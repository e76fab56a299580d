"""The document as one HTML file, nothing outside it: markdown-it's renderer with a few rules (tables in a
scrolling box, figures as <figure> with data: URIs), the style inline, a Content-Security-Policy that fetches
nothing."""
from __future__ import annotations

import html
from collections.abc import Sequence

from shared.document.assemble import TITLE, Section, _now, _parser, parse_parts

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
