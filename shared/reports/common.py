"""What the reports of several job kinds share: the note on settings that are not the homework's, the note
on a run stopped early, the optimizers' names, and how a Fashion-MNIST model (Problems 2 and 3) was trained.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def homework_note(deviations: Sequence[str]) -> list[str]:
    """The lines that open a report right under its title when the job's settings are not the homework's (the
    kind's `deviations`): a blockquote and a blank line; none for the homework's settings."""
    if not deviations:
        return []
    return [f"> **Not the homework's settings:** {'; '.join(deviations)}", ""]


def _stopped_note(result: Mapping[str, Any]) -> list[str]:
    if result.get("stopped_early"):
        return ["", "> Training was stopped before the planned number of epochs; the figures below "
                    "describe the partial run.", ""]
    return []


_OPTIMIZER_NAMES = {"sgd": "SGD", "momentum": "SGD with momentum", "adam": "Adam", "rmsprop": "RMSprop"}


def _fashion_training(result: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """How a Fashion-MNIST model of Problems 2 and 3 was trained, in one sentence (worker/experiments/fashion.py)."""
    lr = float(params.get("learning_rate", 1e-3))
    if params.get("lr_schedule", "cosine") == "cosine":
        frac = float(params.get("final_lr_fraction", 0.02))
        schedule = (f"learning rate {lr:g} decayed along a cosine, step by step, to {100 * frac:g}% of it "
                    f"({lr * frac:g}) at the last step")
    else:
        schedule = f"constant learning rate {lr:g}"
    val_fraction = float(params.get("val_fraction", 0.1))
    n_train, n_val = result.get("n_train"), result.get("n_val")
    sizes = (f"the first {n_train:,} training images; the last {100 * val_fraction:g}% of the training set "
             f"({n_val:,} images) validated after every epoch" if n_train and n_val else
             f"the training set less its last {100 * val_fraction:g}%, which validated after every epoch")
    epochs = result.get("epochs_run", "?")
    planned = params.get("epochs")
    ran = f"{epochs} epoch{'' if epochs == 1 else 's'}" + (f" (of {planned} planned)" if planned and planned != epochs else "")
    optimizer = params.get("optimizer", "adam")
    return (f"Trained for {ran} with {_OPTIMIZER_NAMES.get(optimizer, optimizer)} ({schedule}), batch "
            f"{params.get('batch_size', '?')}, on {sizes}; the model after the last epoch was tested once on "
            f"the 10,000 test images. Seed {params.get('seed', 0)}.")
