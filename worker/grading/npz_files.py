""".npz files (Problem 1's weights, the layout MLP.save_npz writes): every array's name, dtype and shape is read
from the .npy headers inside the zip (nothing decompressed yet) and checked against the engine's layout, then the
arrays are loaded with allow_pickle=False and evaluated with the numpy engine (worker/engine)."""
from __future__ import annotations

import re
import zipfile

import numpy as np

from shared import datasets
from worker.grading.submissions import Rejected

NPZ_MAX_HIDDEN, NPZ_MAX_WIDTH, NPZ_MAX_PARAMS = 8, 4096, 10_000_000


def _npy_header(fh) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(fh)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(fh)
    return shape, dtype


def check_npz_layout(headers: dict[str, tuple[tuple[int, ...], np.dtype]]) -> list[int]:
    """Check the arrays' (shape, dtype) by name against MLP.save_npz's layout: W0 (784, h1), b0 (h1,), ...,
    Wk (h_k, 10), bk (10,), activation (a string: relu or tanh); floats, hidden widths 1..NPZ_MAX_WIDTH, at most
    NPZ_MAX_HIDDEN hidden layers and NPZ_MAX_PARAMS parameters. Returns the layer widths (784, ..., 10)."""
    from worker.engine import ACTIVATION_NAMES

    n = sum(1 for k in headers if re.fullmatch(r"W\d+", k))
    expected = {f"{p}{i}" for i in range(n) for p in "Wb"} | {"activation"}
    if set(headers) != expected or not n:
        odd, missing = sorted(set(headers) - expected), sorted(expected - set(headers))
        problems = ([f"unexpected {', '.join(odd)}"] if odd else []) + ([f"missing {', '.join(missing)}"]
                                                                         if missing else ["no W0"] if not n else [])
        raise Rejected(f"arrays {', '.join(sorted(headers)) or 'none'}: {'; '.join(problems)}; expected W0, b0, "
                       "..., Wk, bk and activation (MLP.save_npz's layout)")
    for key, (shape, dtype) in headers.items():
        if key == "activation":
            if dtype.kind != "U" or shape != () or dtype.itemsize > 64:
                raise Rejected(f"array 'activation' is {dtype} {shape}; expected a string "
                               f"({', '.join(ACTIVATION_NAMES)})")
        elif dtype.kind != "f" or dtype.itemsize not in (2, 4, 8):
            what = "object (pickled Python objects, never loaded)" if dtype.kind == "O" else str(dtype)
            raise Rejected(f"array {key!r} has dtype {what}; expected float32 or float64")
    if n - 1 > NPZ_MAX_HIDDEN:
        raise Rejected(f"{n - 1} hidden layers; at most {NPZ_MAX_HIDDEN} are graded")
    widths = [datasets.N_PIXELS]
    for i in range(n):
        w, b = headers[f"W{i}"][0], headers[f"b{i}"][0]
        out = datasets.N_CLASSES if i == n - 1 else (w[1] if len(w) == 2 else -1)
        role = "the 10 classes out" if i == n - 1 else f"hidden widths 1..{NPZ_MAX_WIDTH}"
        if len(w) != 2 or w[0] != widths[-1] or w[1] != out or not 1 <= out <= NPZ_MAX_WIDTH:
            raise Rejected(f"array 'W{i}' has shape {w}; expected ({widths[-1]}, {out if i == n - 1 else 'h'}) "
                           f"({'the 784 pixels in, ' if i == 0 else ''}{role})")
        if b != (out,):
            raise Rejected(f"array 'b{i}' has shape {b}; expected ({out},)")
        widths.append(out)
    params = sum((a + 1) * c for a, c in zip(widths[:-1], widths[1:]))
    if params > NPZ_MAX_PARAMS:
        raise Rejected(f"{params:,} parameters, over the limit of {NPZ_MAX_PARAMS:,}")
    return widths


def read_npz_model(path):
    """The engine's MLP (float32) from an .npz in MLP.save_npz's layout; headers checked before any array is
    read, arrays loaded with allow_pickle=False. Rejected for anything else."""
    from worker.engine import ACTIVATION_NAMES, MLP

    if not zipfile.is_zipfile(path):
        raise Rejected("not an .npz file (not a zip archive); expected weights saved with numpy.savez")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > 2 * NPZ_MAX_HIDDEN + 3:
                raise Rejected(f"{len(infos)} arrays; expected at most {2 * NPZ_MAX_HIDDEN + 3}")
            headers = {}
            for info in infos:
                key = info.filename[:-4] if info.filename.endswith(".npy") else None
                if key is None or key in headers:
                    raise Rejected(f"member {info.filename!r} is not one numpy array (.npy) of a unique name")
                with zf.open(info) as fh:
                    headers[key] = _npy_header(fh)
        check_npz_layout(headers)
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in headers}
    except Rejected:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise Rejected(f"not a readable .npz file ({exc})") from None
    activation = str(arrays.pop("activation"))
    if activation not in ACTIVATION_NAMES:
        raise Rejected(f"activation {activation[:40]!r}; expected one of {', '.join(ACTIVATION_NAMES)}")
    for key, a in arrays.items():
        if not np.isfinite(a).all():
            raise Rejected(f"array {key!r} holds NaN or infinite values")
    n = len(arrays) // 2
    return MLP([arrays[f"W{i}"].astype(np.float32) for i in range(n)],
               [arrays[f"b{i}"].astype(np.float32) for i in range(n)], activation)


def grade_npz_file(path, x: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy and mean cross-entropy of an .npz MLP on x (rows, 784) float32 in [0, 1], y (rows,) classes."""
    from worker.engine import evaluate

    model = read_npz_model(path)
    result = evaluate(model, x, y)
    if not np.isfinite(result.loss):
        raise Rejected(f"its cross-entropy on the test set is {result.loss} (the outputs overflow)")
    return {"accuracy": result.accuracy, "loss": result.loss, "n_params": model.n_params,
            "architecture": f"{'-'.join(map(str, model.sizes))} {model.activation}"}
