"""All of the project's figures.

Every function takes plain data (numpy arrays, lists of per-epoch dicts) and an output path,
writes one PNG there (creating the parent folder) and returns the path. The Agg backend is
selected at import so plotting works in workers and tests without a display; figures are built
with ``matplotlib.figure.Figure`` directly, so no global pyplot state is shared between calls.
Inside ``with confined_to(folder):`` every path is first checked to stay inside that folder.

Sections:
    * Keras jobs (Problems 2-4): learning curves (one run, every run of a job side by side),
      confusion heat map, weight histograms, weight-matrix heat map, run comparison.
    * The sweep (Problem 1): one run's curve with the LR-halving epochs marked, the overview grid.
Every axis over epochs has whole-number ticks and half an epoch of room each side (`epoch_axis`), so a run
of one or two epochs still draws; legends sit outside the axes, where they cover no curve or label.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from shared.reports import format_cell  # noqa: E402

DPI = 110
_MODEL_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
_OUTPUT_FOLDER: ContextVar[Path | None] = ContextVar("hw3_plots_output_folder", default=None)


@contextmanager
def confined_to(folder: Path | str) -> Iterator[Path]:
    """Within the block, every figure is checked to land inside `folder` before anything is written: a path
    outside it, with `..`, or through a symbolic link leading out raises shared.artifacts.UnsafePath."""
    token = _OUTPUT_FOLDER.set(Path(folder))
    try:
        yield Path(folder)
    finally:
        _OUTPUT_FOLDER.reset(token)


def _save(fig: Figure, path: Path | str) -> Path:
    path = Path(path)
    folder = _OUTPUT_FOLDER.get()
    if folder is not None:
        from shared.artifacts import confined

        confined(folder, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def _series(history: Sequence[Mapping[str, float]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for row in history:
        v = row.get(key)
        if v is not None and np.isfinite(v):
            xs.append(int(row["epoch"]))
            ys.append(float(v))
    return xs, ys


def epoch_axis(ax, epochs: Sequence[int]) -> None:
    """Whole-number epoch ticks, and half an epoch of room on each side, so that a run of one or two epochs
    draws its points inside the axes rather than on a degenerate range."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # 1 tick: the single epoch 1
    if len(epochs):
        ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    ax.set_xlabel("epoch")


def _marker(n_points: int) -> str | None:
    """Markers where the points are few enough to tell apart (a one-epoch curve is only its marker)."""
    return "o" if n_points < 30 else None


def _legend_below(fig: Figure, axes, ncol: int = 4) -> None:
    """One legend for the figure, under the axes, where it covers no curve and no label."""
    handles, labels, seen = [], [], set()
    for ax in np.ravel(axes):
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in seen:
                seen.add(label)
                handles.append(h)
                labels.append(label)
    if handles:
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(ncol, len(handles)),
                   fontsize=8, frameon=False)


# --------------------------------------------------------------------------------------------
# Keras jobs (Problems 2-4)
# --------------------------------------------------------------------------------------------


def plot_learning_curves(history: Sequence[Mapping[str, float]], path: Path | str, *,
                         title: str = "Learning curves", best_epoch: int | None = None,
                         show_loss: bool = True) -> Path:
    """Training and validation accuracy on one axes (and, with ``show_loss``, loss on a second).

    ``history`` rows carry ``epoch`` (1-based), ``train_accuracy``, ``val_accuracy``,
    ``train_loss``, ``val_loss``. ``best_epoch`` draws a marker line at the kept epoch. Epoch ticks are
    whole numbers; the legend sits under the axes.
    """
    panels = [("accuracy", "train_accuracy", "val_accuracy")]
    if show_loss:
        panels.append(("loss", "train_loss", "val_loss"))
    fig = Figure(figsize=(6.0 * len(panels), 4.2), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    epochs = [int(r["epoch"]) for r in history]
    for ax, (name, train_key, val_key) in zip(axes, panels):
        for key, label, color in ((train_key, "training", "tab:blue"), (val_key, "validation", "tab:orange")):
            xs, ys = _series(history, key)
            if xs:
                ax.plot(xs, ys, label=label, color=color, marker=_marker(len(xs)), ms=3)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="gray", ls="--", lw=1, label=f"kept epoch {best_epoch}")
        epoch_axis(ax, epochs)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    _legend_below(fig, axes)
    fig.suptitle(title)
    return _save(fig, path)


def plot_run_grid(histories: Mapping[str, Sequence[Mapping[str, float]]], path: Path | str, *,
                  kept_epochs: Mapping[str, int | None] | None = None, ncols: int = 3,
                  title: str = "Learning curves of every run", highlight: str | None = None) -> Path:
    """Small multiples: training and validation accuracy of every run (one panel each, shared axes), the kept
    epoch of each marked. Panels follow the order of ``histories``; ``highlight`` frames one panel."""
    kept_epochs = dict(kept_epochs or {})
    names = list(histories)
    n = max(len(names), 1)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(3.4 * ncols, 2.5 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
    all_epochs = [int(r["epoch"]) for h in histories.values() for r in h]
    for ax, name in zip(axes.flat, names):
        history = histories[name]
        for key, label, color in (("train_accuracy", "training", "tab:blue"),
                                  ("val_accuracy", "validation", "tab:orange")):
            xs, ys = _series(history, key)
            if xs:
                ax.plot(xs, ys, label=label, color=color, lw=1.2, marker=_marker(len(xs)), ms=2.5)
        kept = kept_epochs.get(name)
        if kept is not None:
            ax.axvline(kept, color="gray", ls="--", lw=1, label="kept epoch")
        ax.set_title(name + (f" (kept epoch {kept})" if kept is not None else ""), fontsize=9,
                     fontweight="bold" if name == highlight else "normal")
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        epoch_axis(ax, all_epochs)
        ax.set_xlabel("")
        if name == highlight:
            for spine in ax.spines.values():
                spine.set_edgecolor("tab:red")
                spine.set_linewidth(1.5)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("epoch", fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy", fontsize=9)
    _legend_below(fig, axes)
    fig.suptitle(title)
    return _save(fig, path)


def plot_confusion_heatmap(rates: np.ndarray, class_names: Sequence[str], path: Path | str, *,
                           title: str = "Confusion rates in % of the true class (row = true class)") -> Path:
    """Annotated heat map of a row-normalised confusion matrix; cells and colour bar both in percent
    (``rates`` are fractions of each row)."""
    C = 100 * np.asarray(rates, dtype=np.float64)
    k = C.shape[0]
    fig = Figure(figsize=(1.6 + 0.8 * k, 1.0 + 0.72 * k))
    ax = fig.subplots()
    im = ax.imshow(C, cmap="Blues", vmin=0.0, vmax=100.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="% of the true class's images")
    ax.set_xticks(range(k), labels=list(class_names), rotation=45, ha="right")
    ax.set_yticks(range(k), labels=list(class_names))
    ax.set_xlabel("decided class")
    ax.set_ylabel("true class")
    for i in range(k):
        for j in range(k):
            v = C[i, j]
            if v >= 0.05:  # 0.0 after rounding: left blank
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=7.5,
                        color="white" if v > 50 else "black")
    ax.set_title(title)
    return _save(fig, path)


def plot_weight_histogram(weights: np.ndarray, bins: np.ndarray, path: Path | str, *,
                          title: str, color: str = "tab:blue", initial: np.ndarray | None = None) -> Path:
    """Density histogram of one weight array on the given (shared) bin edges; ``initial`` (the same layer
    before training) is drawn as a grey outline on the same bins."""
    w = np.asarray(weights, dtype=np.float64).ravel()
    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.subplots()
    ax.hist(w, bins=bins, density=True, color=color, alpha=0.85, label=f"after training (std {w.std():.3g})")
    if initial is not None:
        w0 = np.asarray(initial, dtype=np.float64).ravel()
        ax.hist(w0, bins=bins, density=True, histtype="step", color="dimgray", lw=1.3, ls="--",
                label=f"at initialization (std {w0.std():.3g})")
    ax.set_xlim(bins[0], bins[-1])
    ax.set_xlabel("weight value")
    ax.set_ylabel("density")
    ax.set_title(f"{title}\n(n={w.size}, std={w.std():.3g})", fontsize=10)
    ax.grid(alpha=0.3)
    if initial is not None:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _save(fig, path)


def plot_weight_overlay(weights_by_model: Mapping[str, np.ndarray], bins: np.ndarray,
                        path: Path | str, *, title: str) -> Path:
    """Overlaid density histograms of several models' weights for one junction (shared bins)."""
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    for (name, w), color in zip(weights_by_model.items(), _MODEL_COLORS):
        w = np.asarray(w, dtype=np.float64).ravel()
        ax.hist(w, bins=bins, density=True, histtype="stepfilled", alpha=0.35, color=color,
                label=f"{name} (std {w.std():.3g})")
        ax.hist(w, bins=bins, density=True, histtype="step", color=color, lw=1.2)
    ax.set_xlim(bins[0], bins[-1])
    ax.set_xlabel("weight value")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_weight_matrix(W: np.ndarray, path: Path | str, *, title: str = "Input→hidden weights",
                       xlabel: str = "hidden unit", ylabel: str = "input position",
                       annotate: bool = True, digits: int = 2) -> Path:
    """Diverging heat map of a weight matrix (rows = inputs, columns = units), centred at 0.

    Rows and columns are labelled 1-based; each cell shows its value with ``digits`` decimals
    (:func:`shared.reports.format_cell`: a value that rounds to zero reads 0.00, never −0.00).
    """
    W = np.asarray(W, dtype=np.float64)
    n_rows, n_cols = W.shape
    m = float(np.max(np.abs(W))) or 1.0
    fig = Figure(figsize=(2.0 + 0.62 * n_cols, 1.2 + 0.48 * n_rows))
    ax = fig.subplots()
    im = ax.imshow(W, cmap="RdBu_r", vmin=-m, vmax=m, aspect="auto")
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label="weight")
    ax.set_xticks(range(n_cols), labels=[str(j + 1) for j in range(n_cols)], fontsize=9)
    ax.set_yticks(range(n_rows), labels=[str(i + 1) for i in range(n_rows)], fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if annotate and n_rows * n_cols <= 900:
        for i in range(n_rows):
            for j in range(n_cols):
                v = W[i, j]
                text = format_cell(v, digits).replace("-", "\N{MINUS SIGN}")
                ax.text(j, i, text, ha="center", va="center", fontsize=7.5,
                        color="white" if abs(v) > 0.6 * m else "black")
    ax.set_title(title)
    return _save(fig, path)


def plot_run_comparison(names: Sequence[str], values: Sequence[float], path: Path | str, *,
                        title: str = "Validation accuracy per run",
                        ylabel: str = "validation accuracy", highlight: str | None = None,
                        reference: float | None = None, label: str = "bar",
                        second: Sequence[float | None] | None = None, second_label: str = "") -> Path:
    """Horizontal bar chart of one number per run (``label`` names it in the legend); ``highlight``
    colours one bar; ``second`` draws another number per run as a black dot (``second_label``);
    ``reference`` draws a vertical line at a value the caller names in ``title``."""
    names = list(names)
    vals = np.asarray(values, dtype=np.float64)
    dots = (np.asarray([np.nan if v is None else v for v in second], dtype=np.float64)
            if second is not None else None)
    fig = Figure(figsize=(7.0, 0.9 + 0.35 * len(names)), layout="constrained")
    ax = fig.subplots()
    colors = ["tab:orange" if n == highlight else "tab:blue" for n in names]
    ax.barh(range(len(names)), vals, color=colors)
    ax.set_yticks(range(len(names)), labels=names, fontsize=8)
    ax.invert_yaxis()
    shown = [vals] + ([dots[np.isfinite(dots)]] if dots is not None else [])
    shown += [np.array([reference])] if reference is not None else []
    everything = np.concatenate(shown)
    lo, hi = float(everything.min()), float(everything.max())
    pad = max(0.01, 0.15 * (hi - lo))
    ax.set_xlim(max(0.0, lo - pad), min(1.0, hi + 2 * pad) if hi <= 1.0 else hi + 2 * pad)
    for i, v in enumerate(vals):  # the value right of its bar and its dot, so neither covers it
        right = np.nanmax([v, dots[i]]) if dots is not None else v
        ax.text(right, i, f"  {v:.4f}", va="center", fontsize=7)
    if dots is not None:
        ax.plot(dots, range(len(names)), "o", color="black", ms=4)
    if reference is not None:
        ax.axvline(reference, color="gray", ls="--", lw=1)
    if dots is not None:
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        handles = [Patch(color="tab:blue", label=f"{label} (the number written)")]
        if highlight is not None:
            handles.append(Patch(color="tab:orange", label=f"{highlight}, the chosen run"))
        handles.append(Line2D([], [], ls="", marker="o", color="black", ms=4, label=second_label))
        fig.legend(handles=handles, fontsize=8, loc="upper center", ncol=len(handles), frameon=False,
                   bbox_to_anchor=(0.5, 0.0))
    ax.set_xlabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def plot_curve_comparison(histories: Mapping[str, Sequence[Mapping[str, float]]], path: Path | str, *,
                          title: str = "Learning curves by model") -> Path:
    """Training (dashed) and validation (solid) accuracy of several runs on one axes, legend beside it."""
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.subplots()
    epochs = []
    for (name, history), color in zip(histories.items(), _MODEL_COLORS):
        xs, ys = _series(history, "train_accuracy")
        if xs:
            ax.plot(xs, ys, ls="--", color=color, marker=_marker(len(xs)), ms=3, label=f"{name} training")
        epochs += xs
        xs, ys = _series(history, "val_accuracy")
        if xs:
            ax.plot(xs, ys, ls="-", color=color, marker=_marker(len(xs)), ms=3, label=f"{name} validation")
        epochs += xs
    epoch_axis(ax, epochs)
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# The sweep (Problem 1)
# --------------------------------------------------------------------------------------------


def _accuracy_limits(rows: Sequence[Mapping[str, float]]) -> tuple[float, float] | None:
    """y-limits that leave the top quarter of the axes free of data, for the LR labels."""
    values = [v for key in ("train_accuracy", "val_accuracy") for v in _series(rows, key)[1]]
    if not values:
        return None
    lo, hi = min(values), max(values)
    span = max(hi - lo, 0.01)
    return lo - 0.05 * span, hi + 0.35 * span


def _draw_sweep_axes(ax, rows: Sequence[Mapping[str, float]], decay_epochs: Sequence[int], title: str,
                     ylim: tuple[float, float] | None = None) -> None:
    """Training and validation accuracy against epoch, each LR-halving boundary marked by a dotted line and
    labelled in the band above the data (``ylim``, default from ``rows``, keeps that band free); the legend is
    placed by the caller, outside the axes."""
    epochs = []
    for key, label, color in (("train_accuracy", "training", "tab:blue"), ("val_accuracy", "validation", "tab:orange")):
        xs, ys = _series(rows, key)
        if xs:
            ax.plot(xs, ys, "-", color=color, marker="." if len(xs) < 30 else None, ms=6 if len(xs) < 3 else 4,
                    label=label)
        epochs += xs
    ylim = ylim or _accuracy_limits(rows)
    if ylim is not None:
        ax.set_ylim(*ylim)
        ax.set_yticks([t for t in MaxNLocator(6).tick_values(*ylim) if ylim[0] <= t <= min(ylim[1], 1.0)])
    lrs = {int(r["epoch"]): r.get("lr") for r in rows}
    for boundary in decay_epochs:
        ax.axvline(boundary + 0.5, color="grey", linestyle=":", linewidth=1)
        after = lrs.get(boundary + 1)
        text = f"LR halved after\nepoch {boundary}" + (f" (now {after:g})" if after else "")
        ax.annotate(text, xy=(boundary + 0.5, 0.97), xycoords=("data", "axes fraction"), fontsize=7,
                    ha="center", va="top", color="dimgrey",
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.9})
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("accuracy")
    epoch_axis(ax, sorted(set(epochs)) or [int(r["epoch"]) for r in rows])
    ax.grid(alpha=0.3)


def sweep_run_curve(rows: Sequence[Mapping[str, float]], name: str, decay_epochs: Sequence[int],
                    path: Path | str, *, title: str | None = None) -> Path:
    """One run's learning curve (`rows`: its epoch rows from the store); `title` replaces the default
    (the run's name and its final epoch's validation accuracy). The legend sits beside the axes."""
    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.add_subplot()
    if title is None:
        last = rows[-1] if rows else {}
        sub = (f" — final epoch ({last['epoch']}) val {last['val_accuracy']:.4f}"
               if last.get("val_accuracy") is not None else "")
        title = f"{name}{sub}"
    _draw_sweep_axes(ax, rows, decay_epochs, title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return _save(fig, path)


def sweep_overview(rows: Sequence[Mapping[str, float]], runs: Sequence[Mapping], decay_epochs: Sequence[int],
                   path: Path | str) -> Path:
    """The sweep's runs side by side (2×3 for the default six), sharing the accuracy axis; one legend under
    the panels."""
    n = len(runs)
    ncols = 3 if n > 4 else max(n, 1)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.3 * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False)
    ids = {run["run_id"] for run in runs}
    ylim = _accuracy_limits([r for r in rows if r["run_id"] in ids])  # shared by every panel
    for ax, run in zip(axes.flat, runs):
        run_rows = [r for r in rows if r["run_id"] == run["run_id"]]
        last = run_rows[-1]["val_accuracy"] if run_rows and run_rows[-1]["val_accuracy"] is not None else None
        _draw_sweep_axes(ax, run_rows, decay_epochs,
                         f"{run['name']}" + (f" (final val {last:.4f})" if last is not None else ""), ylim)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    _legend_below(fig, axes)
    fig.suptitle("Sweep: training and validation accuracy per configuration")
    return _save(fig, path)
