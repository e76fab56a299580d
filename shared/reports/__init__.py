"""The text of a job's report: markdown sections, one function per job kind, and the sentences in them.

Each section function takes the job's result dict (as returned by the experiment's final step and
stored with the job) and returns a markdown string. Image and file links are relative to the
job's artifact folder, where the report itself is written. The sentences are written from the
numbers of shared/analysis.py, each showing the number it rests on.

Every word that judges a number ("wider", "shrunk", "alternating", "stands out") follows a named threshold of
shared/analysis.py, and the report lists those thresholds beside the sentences.

One module per concern (every public name is importable from shared.reports):

``tables``          markdown_table, format_cell, matrix_markdown, format_confusion_table (plain text),
                    indexed_names ("m: name" class labels), and the cell helpers the sections share
``common``          homework_note (settings that are not the homework's), the stopped-early note, and how a
                    Fashion-MNIST model was trained (Problems 2 and 3)
``sweep``           sweep_report (Problem 1), the whole report.md from the job's status and rows
``confusion``       confusion_section (Problem 2)
``regularization``  regularization_section (Problem 3) and its sentences: describe_weight_differences and
                    spread_thresholds, from analysis.weight_stats and analysis.spread_baseline
``human_machine``   human_machine_section (Problem 4) and its sentences: weight_insight_sentences and
                    insight_thresholds, from analysis.weight_insight
"""
from __future__ import annotations

from .common import homework_note
from .confusion import confusion_section
from .human_machine import human_machine_section, insight_thresholds, weight_insight_sentences
from .regularization import describe_weight_differences, regularization_section, spread_thresholds
from .sweep import sweep_report
from .tables import format_cell, format_confusion_table, indexed_names, markdown_table, matrix_markdown

__all__ = ["confusion_section", "describe_weight_differences", "format_cell", "format_confusion_table",
           "homework_note", "human_machine_section", "indexed_names", "insight_thresholds", "markdown_table",
           "matrix_markdown", "regularization_section", "spread_thresholds", "sweep_report",
           "weight_insight_sentences"]
