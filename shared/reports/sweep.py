"""Problem 1: report.md of the numpy MLP sweep, from the job's status and rows."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from .common import homework_note
from .tables import _pct


def sweep_report(status: Mapping, rows: Sequence[Mapping], deviations: Sequence[str] = ()) -> str:
    """report.md of a sweep job: the homework's deliverables for Problem 1, from the job's status and rows;
    `deviations` (the kind's): how its settings differ from the homework's, said first."""
    p = status["params"]
    result = status.get("result") or {}
    layers = [784, *p["hidden"], 10]
    decay = p.get("decay_epochs") or []
    out = [f"# Problem 1 — numpy MLP sweep (job `{status['job_id']}`)", "", *homework_note(deviations),
           f"State: **{status['state']}**" + (f" — {status['error']}" if status.get("error") else ""), "",
           "## Network and training", "",
           f"- Layers (neurons): {' → '.join(map(str, layers))} "
           f"({len(p['hidden'])} hidden layer{'s' if len(p['hidden']) != 1 else ''}; softmax output, "
           "cross-entropy loss)",
           f"- Hidden activations compared: {', '.join(p['activations'])}",
           f"- Initial learning rates compared: {', '.join(f'{lr:g}' for lr in p['lrs'])}",
           f"- Batch size: {p['batch_size']} (minibatch SGD"
           + (f", momentum {p['momentum']:g}" if p.get("momentum") else "") + ")",
           f"- Initialization: {p['init']} (normal); biases zero",
           f"- Regularization: L2 {p.get('l2', 0):g} on the weights, dropout {p.get('dropout', 0):g} "
           "on hidden layers",
           f"- Epochs: {p['epochs']}; learning rate halved after epoch"
           f"{'s' if len(decay) != 1 else ''} {', '.join(map(str, decay)) or '(none)'}",
           f"- Data: each configuration trained on images 1–{p['train_size']:,} of mnist_traindata.hdf5 and "
           "was validated on its last 10,000 (images 50,001–60,000); the chosen configuration was retrained "
           "on all 60,000 images of mnist_traindata.hdf5 and tested once on the 10,000 of mnist_testdata.hdf5; "
           "inputs used as given (no preprocessing)",
           f"- Seed: {p.get('seed')}", "",
           "## The configurations", "",
           "| run | activation | initial LR | state | epochs | final val accuracy | best val accuracy |",
           "|---|---|---|---|---|---|---|"]
    for r in status["runs"]:
        if r["role"] != "run":
            continue
        out.append(f"| {r['name']} | {r['config']['activation']} | {r['config']['lr']:g} | {r['state']} | "
                   f"{r['epochs_done']}/{r['epochs_total']} | {_pct(r['last_val_accuracy'])} | "
                   f"{_pct(r['best_val_accuracy'])} |")
    out += ["", "![overview](overview.png)", ""]
    for r in status["runs"]:
        if r["role"] == "run":
            out.append(f"![{r['name']}](runs/{r['name']}/curve.png)")
    failed = {r["name"]: r["error"] for r in status["runs"] if r["state"] == "failed"}
    if failed:
        out += ["", "## Failed runs", ""] + [f"- {name}: {err}" for name, err in failed.items()]
    if "chosen" in result:
        c = result["chosen"]
        ranked = sorted(((v, k) for k, v in result["val_accuracy"].items() if v is not None), reverse=True)
        runner_up = ranked[1] if len(ranked) > 1 else None
        out += ["", "## Chosen configuration", "",
                f"**{c['activation']}, initial learning rate {c['lr']:g}** — chosen by the highest "
                f"{result['selection']}: {_pct(c['val_accuracy'])}"
                + (f" (next best: {runner_up[1]}, {_pct(runner_up[0])})." if runner_up else "."),
                "", "Retrained with the same schedule on all 60,000 training images, then evaluated once on "
                "the 10,000 images of mnist_testdata.hdf5.", "",
                "![final](runs/final/curve.png)", "",
                "## Final test accuracy", "",
                f"**{_pct(result['test_accuracy'])}** (test loss {result['test_loss']:.4f}); weights in "
                f"`{result['weights']}`.", ""]
    return "\n".join(out) + "\n"
