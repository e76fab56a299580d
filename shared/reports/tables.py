"""Markdown tables, cells and numbers of the reports.

markdown_table (GitHub-flavoured), format_cell and matrix_markdown (signed numbers, never -0.00),
format_confusion_table (aligned plain text) and indexed_names ("m: name" class labels); the private
helpers every section uses: _pct (a share as a percentage, "—" for none), _times ("×1.20"), _h (a heading)
and _img (an image link).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[Any], rows: Sequence[Sequence[Any]],
                   align: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured markdown table; ``align`` holds "l"/"r"/"c" per column."""
    align = list(align or ["l"] + ["r"] * (len(header) - 1))
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |",
             "| " + " | ".join(marks[a] for a in align) + " |"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def format_cell(value: float, digits: int = 2, *, plus: bool = False) -> str:
    """A number for a table or heat-map cell: a value that rounds to zero reads 0.00 (never -0.00 or +0.00);
    ``plus`` signs the others explicitly."""
    text = f"{value:+.{digits}f}" if plus else f"{value:.{digits}f}"
    return f"{0:.{digits}f}" if float(text) == 0.0 else text


def matrix_markdown(W: Any, *, row_label: str = "row", col_label: str = "col", digits: int = 2) -> str:
    """A numeric matrix as a markdown table with 1-based row and column labels (cells by :func:`format_cell`)."""
    W = np.asarray(W, dtype=np.float64)
    header = [f"{row_label} \\ {col_label}", *(str(j + 1) for j in range(W.shape[1]))]
    rows = [[str(i + 1), *(format_cell(v, digits, plus=True) for v in row)] for i, row in enumerate(W)]
    return markdown_table(header, rows)


def format_confusion_table(C: np.ndarray, class_names: Sequence[str], digits: int = 3) -> str:
    """Aligned plain-text table of a confusion-rate matrix: rows = true class, columns = decision."""
    C = np.asarray(C, dtype=np.float64)
    names = [str(n) for n in class_names]
    if C.shape != (len(names), len(names)):
        raise ValueError(f"matrix shape {C.shape} does not match {len(names)} class names")
    corner = "true \\ predicted"
    label_w = max(len(corner), *(len(n) for n in names))
    cell_w = max(digits + 2, *(len(n) for n in names))
    header = corner.ljust(label_w) + " | " + " ".join(n.rjust(cell_w) for n in names)
    rule = "-" * label_w + "-+-" + "-" * (len(header) - label_w - 3)
    lines = [header, rule]
    for name, row in zip(names, C):
        cells = " ".join(f"{v:.{digits}f}".rjust(cell_w) for v in row)
        lines.append(name.ljust(label_w) + " | " + cells)
    return "\n".join(lines)


def indexed_names(class_names: Sequence[str]) -> list[str]:
    """Class labels as the homework numbers them: "m: name", m counted from 0 ("0: T-shirt/top")."""
    return [f"{m}: {name}" for m, name in enumerate(class_names)]


def _times(r: float | None) -> str:
    return "—" if r is None else f"×{r:.2f}"


def _pct(v: Any, digits: int = 2) -> str:
    return "—" if v is None else f"{100 * float(v):.{digits}f}%"


def _h(level: int, text: str) -> str:
    return "#" * max(1, level) + " " + text


def _img(alt: str, path: str) -> str:
    return f"![{alt}]({path})"
