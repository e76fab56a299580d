"""Problem 2: the Fashion-MNIST confusion section (test accuracy, confusion rates, most-confused classes)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .common import _fashion_training, _stopped_note
from .tables import _h, _img, _pct, indexed_names, markdown_table


def confusion_section(result: Mapping[str, Any], *, level: int = 2,
                      title: str = "Test accuracy and confusion rates") -> str:
    """Test accuracy, the confusion-rate table, most-confused classes and figures. Classes read "m: name"
    with the homework's indices 0–9."""
    files = result.get("files", {})
    names = list(result["class_names"])
    label = dict(zip(names, indexed_names(names)))
    rates = np.asarray(result["confusion_rates"], dtype=np.float64)
    params = result.get("params", {})
    pair = result["most_confused_pair"]
    out = [_h(level, title), *_stopped_note(result), ""]
    arch = (f"Dense({params.get('hidden_units', 100)}, ReLU, L2 {params.get('l2', 1e-4):g}) → "
            f"Dropout({params.get('dropout', 0.3):g}) → Dense(10, softmax)")
    out.append(f"Network {arch}. {_fashion_training(result, params)}")
    final = result.get("final") or {}
    out += ["", f"**Test accuracy: {_pct(result['test_accuracy'])}** (test loss "
                f"{result.get('test_loss', float('nan')):.4f}; final epoch: training accuracy "
                f"{_pct(final.get('train_accuracy'))}, validation accuracy {_pct(final.get('val_accuracy'))}).", ""]
    a, b = pair["classes"]
    ia, ib = pair.get("indices") or (names.index(a), names.index(b))
    out.append(f"The two classes most confused with each other are **{label[a]}** and **{label[b]}**: "
               f"C[{ia}][{ib}] + C[{ib}][{ia}] = {_pct(pair['rate_ab'])} + {_pct(pair['rate_ba'])} = "
               f"{_pct(pair['rate'])}. C[m][n] is the share of the test images of class m decided as n.")
    if pair.get("ties"):
        out.append(f"Tied with: {', '.join(' / '.join(label.get(c, c) for c in t) for t in pair['ties'])}.")
    out += ["", _h(level + 1, "Class most likely confused for each class"), ""]
    rows = []
    for row in result["most_confused_for"]:
        other = label.get(row["confused_with"], "—") if row["confused_with"] else "—"
        if row.get("ties"):
            other += " (tied: " + ", ".join(label.get(t, t) for t in row["ties"]) + ")"
        rows.append([label.get(row["class"], row["class"]), _pct(row.get("correct_rate")), other, _pct(row["rate"])])
    out.append(markdown_table(["true class", "correct", "most often decided instead", "rate"], rows,
                              ["l", "r", "l", "r"]))
    out += ["", _h(level + 1, "Confusion rates C[m][n] (row m = true class, column n = decision, % of the row)"), ""]
    out.append(markdown_table(["true \\ decided", *indexed_names(names)],
                              [[label[n], *(f"{100 * v:.1f}" for v in r)] for n, r in zip(names, rates)]))
    out += ["", _img("confusion heat map", files.get("heatmap", "confusion.png")), "",
            _img("learning curves", files.get("learning_curves", "learning_curves.png")), "",
            f"Files: [{files.get('csv', 'confusion.csv')}]({files.get('csv', 'confusion.csv')}), "
            f"[{files.get('json', 'confusion.json')}]({files.get('json', 'confusion.json')}), "
            f"[{files.get('table', 'confusion.txt')}]({files.get('table', 'confusion.txt')}).", ""]
    return "\n".join(out)
