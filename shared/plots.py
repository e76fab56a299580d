"""All of the project's figures.

Every function takes plain data (numpy arrays, lists of per-epoch dicts) and an output path,
writes one PNG there (creating the parent folder) and returns the path. The Agg backend is
selected at import so plotting works in workers and tests without a display; figures are built
with ``matplotlib.figure.Figure`` directly, so no global pyplot state is shared between calls.
Inside ``with confined_to(folder):`` every path is first checked to stay inside that folder.

Sections:
    * Keras jobs (Problems 2-4): learning curves, confusion heat map, weight histograms,
      weight-matrix heat map, run comparison.
    * The sweep (Problem 1): one run's curve with the LR-halving epochs marked, the overview grid.
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


# --------------------------------------------------------------------------------------------
# Keras jobs (Problems 2-4)
# --------------------------------------------------------------------------------------------


def plot_learning_curves(history: Sequence[Mapping[str, float]], path: Path | str, *,
                         title: str = "Learning curves", best_epoch: int | None = None,
                         show_loss: bool = True) -> Path:
    """Training and validation accuracy on one axes (and, with ``show_loss``, loss on a second).

    ``history`` rows carry ``epoch`` (1-based), ``train_accuracy``, ``val_accuracy``,
    ``train_loss``, ``val_loss``. ``best_epoch`` draws a marker line at the kept epoch.
    """
    panels = [("accuracy", "train_accuracy", "val_accuracy")]
    if show_loss:
        panels.append(("loss", "train_loss", "val_loss"))
    fig = Figure(figsize=(6.0 * len(panels), 4.2))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, train_key, val_key) in zip(axes, panels):
        for key, label, color in ((train_key, "training", "tab:blue"), (val_key, "validation", "tab:orange")):
            xs, ys = _series(history, key)
            if xs:
                ax.plot(xs, ys, label=label, color=color, marker="o" if len(xs) < 15 else None, ms=3)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="gray", ls="--", lw=1, label=f"kept epoch {best_epoch}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def plot_confusion_heatmap(rates: np.ndarray, class_names: Sequence[str], path: Path | str, *,
                           title: str = "Confusion rates (row = true class)") -> Path:
    """Annotated heat map of a row-normalised confusion matrix (values shown in percent)."""
    C = np.asarray(rates, dtype=np.float64)
    k = C.shape[0]
    fig = Figure(figsize=(1.0 + 0.75 * k, 0.8 + 0.7 * k))
    ax = fig.subplots()
    im = ax.imshow(C, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="rate")
    ax.set_xticks(range(k), labels=list(class_names), rotation=45, ha="right")
    ax.set_yticks(range(k), labels=list(class_names))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    for i in range(k):
        for j in range(k):
            v = C[i, j]
            if v >= 0.0005:
                ax.text(j, i, f"{100 * v:.1f}", ha="center", va="center", fontsize=7,
                        color="white" if v > 0.5 else "black")
    ax.set_title(title)
    return _save(fig, path)


def plot_weight_histogram(weights: np.ndarray, bins: np.ndarray, path: Path | str, *,
                          title: str, color: str = "tab:blue") -> Path:
    """Density histogram of one weight array on the given (shared) bin edges."""
    w = np.asarray(weights, dtype=np.float64).ravel()
    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.subplots()
    ax.hist(w, bins=bins, density=True, color=color, alpha=0.85)
    ax.set_xlim(bins[0], bins[-1])
    ax.set_xlabel("weight value")
    ax.set_ylabel("density")
    ax.set_title(f"{title}\n(n={w.size}, std={w.std():.3g})", fontsize=10)
    ax.grid(alpha=0.3)
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
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_weight_matrix(W: np.ndarray, path: Path | str, *, title: str = "Input→hidden weights",
                       xlabel: str = "hidden unit", ylabel: str = "input position",
                       annotate: bool = True) -> Path:
    """Diverging heat map of a weight matrix (rows = inputs, columns = units), centred at 0.

    Rows and columns are labelled 1-based.
    """
    W = np.asarray(W, dtype=np.float64)
    n_rows, n_cols = W.shape
    m = float(np.max(np.abs(W))) or 1.0
    fig = Figure(figsize=(1.5 + 0.5 * n_cols, 1.0 + 0.45 * n_rows))
    ax = fig.subplots()
    im = ax.imshow(W, cmap="RdBu_r", vmin=-m, vmax=m, aspect="auto")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="weight")
    ax.set_xticks(range(n_cols), labels=[str(j + 1) for j in range(n_cols)], fontsize=8)
    ax.set_yticks(range(n_rows), labels=[str(i + 1) for i in range(n_rows)], fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if annotate and n_rows * n_cols <= 900:
        for i in range(n_rows):
            for j in range(n_cols):
                v = W[i, j]
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=5.5,
                        color="white" if abs(v) > 0.6 * m else "black")
    ax.set_title(title)
    return _save(fig, path)


def plot_run_comparison(names: Sequence[str], values: Sequence[float], path: Path | str, *,
                        title: str = "Best validation accuracy per run",
                        ylabel: str = "validation accuracy", highlight: str | None = None,
                        reference: float | None = None) -> Path:
    """Horizontal bar chart of one number per run; ``highlight`` colours one bar, ``reference``
    draws a vertical goal line."""
    names = list(names)
    vals = np.asarray(values, dtype=np.float64)
    fig = Figure(figsize=(6.5, 0.9 + 0.35 * len(names)))
    ax = fig.subplots()
    colors = ["tab:orange" if n == highlight else "tab:blue" for n in names]
    ax.barh(range(len(names)), vals, color=colors)
    ax.set_yticks(range(len(names)), labels=names, fontsize=8)
    ax.invert_yaxis()
    lo = float(min(vals.min(), reference if reference is not None else vals.min()))
    hi = float(max(vals.max(), reference if reference is not None else vals.max()))
    pad = max(0.01, 0.15 * (hi - lo))
    ax.set_xlim(max(0.0, lo - pad), min(1.0, hi + pad) if hi <= 1.0 else hi + pad)
    for i, v in enumerate(vals):
        ax.text(v, i, f" {v:.4f}", va="center", fontsize=7)
    if reference is not None:
        ax.axvline(reference, color="gray", ls="--", lw=1, label=f"goal {reference:g}")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def plot_curve_comparison(histories: Mapping[str, Sequence[Mapping[str, float]]], path: Path | str, *,
                          title: str = "Learning curves by model") -> Path:
    """Training (dashed) and validation (solid) accuracy of several runs on one axes."""
    fig = Figure(figsize=(7.0, 4.5))
    ax = fig.subplots()
    for (name, history), color in zip(histories.items(), _MODEL_COLORS):
        xs, ys = _series(history, "train_accuracy")
        if xs:
            ax.plot(xs, ys, ls="--", color=color, label=f"{name} training")
        xs, ys = _series(history, "val_accuracy")
        if xs:
            ax.plot(xs, ys, ls="-", color=color, label=f"{name} validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# The sweep (Problem 1)
# --------------------------------------------------------------------------------------------


def _draw_sweep_axes(ax, rows: Sequence[Mapping[str, float]], decay_epochs: Sequence[int], title: str) -> None:
    """Training and validation accuracy against epoch, each LR-halving boundary marked and labelled."""
    for key, label, style in (("train_accuracy", "training", "-"), ("val_accuracy", "validation", "-")):
        xs, ys = _series(rows, key)
        if xs:
            ax.plot(xs, ys, style, marker="." if len(xs) < 30 else None, label=label)
    lrs = {int(r["epoch"]): r.get("lr") for r in rows}
    for boundary in decay_epochs:
        ax.axvline(boundary + 0.5, color="grey", linestyle=":", linewidth=1)
        after = lrs.get(boundary + 1)
        text = f"LR halved after epoch {boundary}" + (f"\n(now {after:g})" if after else "")
        ax.annotate(text, xy=(boundary + 0.5, 0.02), xycoords=("data", "axes fraction"), fontsize=7,
                    rotation=90, ha="right", va="bottom", color="dimgrey")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)


def sweep_run_curve(rows: Sequence[Mapping[str, float]], name: str, decay_epochs: Sequence[int],
                    path: Path | str) -> Path:
    """One run's learning curve (`rows`: its epoch rows from the store)."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    last = rows[-1] if rows else {}
    sub = f" — final val {last['val_accuracy']:.4f}" if last.get("val_accuracy") is not None else ""
    _draw_sweep_axes(ax, rows, decay_epochs, f"{name}{sub}")
    return _save(fig, path)


def sweep_overview(rows: Sequence[Mapping[str, float]], runs: Sequence[Mapping], decay_epochs: Sequence[int],
                   path: Path | str) -> Path:
    """The sweep's runs side by side (2×3 for the default six), sharing the accuracy axis."""
    n = len(runs)
    ncols = 3 if n > 4 else max(n, 1)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.3 * nrows))
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False)
    for ax, run in zip(axes.flat, runs):
        run_rows = [r for r in rows if r["run_id"] == run["run_id"]]
        last = run_rows[-1]["val_accuracy"] if run_rows and run_rows[-1]["val_accuracy"] is not None else None
        _draw_sweep_axes(ax, run_rows, decay_epochs,
                         f"{run['name']}" + (f" (val {last:.4f})" if last is not None else ""))
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle("Sweep: training and validation accuracy per configuration")
    fig.tight_layout()
    return _save(fig, path)

