"""Grading: the course's side. A TA's folder of submissions graded in parallel, one run per file, each file
treated as hostile.

    hw3-submit grade human-machine PATH... [--data FILE]   Problem 4's Keras models (*.h5, *.hdf5)
    hw3-submit grade mnist PATH...                         Problem 1's numpy weights (*.npz, the sweep's layout)

The path of one submission:
  1. the client (`plan`) lists the files (a folder gives its *.h5/*.hdf5 or *.npz, by name), refuses
     symbolic links, anything that is not a regular file and files over SIZE_LIMITS, and hashes the rest;
     `stage` copies them into the job folder (submissions/<run>.<suffix>) so workers on any host read them
     from the shared volume. A refused file keeps its run, which fails with the reason: every file given
     gets a row.
  2. a worker (`train`) reads the copy under a time limit (TIME_LIMIT_S, SIGALRM in the pool process):
     - a Keras file is read with h5py only: the root attribute `model_config` (JSON) must be a Sequential or
       a plain functional chain of InputLayer, Dense, Dropout and Activation layers with KERAS_ACTIVATIONS,
       20 inputs, one sigmoid output, at most KERAS_MAX_PARAMS parameters; then each Dense layer's kernel and
       bias, shapes checked before a byte is read. Keras never sees the file: the worker builds the checked
       architecture itself (cached per architecture and process: one TensorFlow per pool process, a model
       built once), sets the weights and evaluates. No layer of the file is deserialised, so a Lambda's
       bytecode is never unmarshalled, let alone run (stricter than load_model's safe_mode=True).
     - an .npz is read with allow_pickle=False after every array's name, dtype and shape were read from the
       .npy headers in the zip (nothing decompressed yet) and checked against the engine's layout
       (W0, b0, ..., activation; 784 in, 10 out, hidden widths up to NPZ_MAX_WIDTH); the numpy engine
       (worker/engine) evaluates it on mnist_testdata.hdf5.
  3. the job's result (`finalize`): `grades`, one row per file in the order given (file, sha256, size,
     accuracy, loss, n_params, error), grades.csv ranked, and report.md with the ranking and the failures.

Memory is bounded by construction: nothing is allocated from a file before its shapes passed the allow-list and
the parameter limits (4 MB of float32 weights for Keras, 40 MB for .npz; evaluation batches of EVAL_ROWS rows).
"""
from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import re
import signal
import stat
import threading
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from shared import datasets
from shared.artifacts import confined
from shared.entities import EpochRow, JobStatus
from worker.kinds.base import JobContext, JobKind, Option, Plan, RunContext, RunSpec

MB = 1_000_000
# A Problem 4 model is ~20 KB; 20 MB holds KERAS_MAX_PARAMS float32 weights with an optimizer's two slots each.
# The sweep's 784-512-256-10 weights are 2.1 MB (4.3 MB in float64); 50 MB holds NPZ_MAX_PARAMS in float32.
SIZE_LIMITS = {".h5": 20 * MB, ".hdf5": 20 * MB, ".npz": 50 * MB}
TIME_LIMIT_S = 60          # load + check + evaluate of one file (a valid one takes well under a second)
MAX_SUBMISSIONS = 1000
KERAS_INPUTS = 20          # the 20-bit sequences
KERAS_LAYERS = ("InputLayer", "Dense", "Dropout", "Activation")
KERAS_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "elu", "selu", "softplus", "softsign", "swish", "silu",
                     "gelu", "leaky_relu", "relu6", "hard_sigmoid")
KERAS_MAX_LAYERS, KERAS_MAX_UNITS, KERAS_MAX_PARAMS = 32, 4096, 1_000_000
KERAS_MAX_CONFIG = 1_000_000   # characters of model_config
KERAS_MAX_CHUNKS = 1024        # HDF5 chunks per weight array
NPZ_MAX_HIDDEN, NPZ_MAX_WIDTH, NPZ_MAX_PARAMS = 8, 4096, 10_000_000
EVAL_ROWS = 2048           # rows per forward pass: activations stay under EVAL_ROWS x 4096 floats per layer


class Rejected(ValueError):
    """A submission's content fails a check; the message names the layer, array or attribute."""


class SubmissionRejected(Exception):
    """A run's failure: its file, and why its content was rejected."""


class SubmissionRefused(Exception):
    """A run's failure: its file was not copied (a symbolic link, not a regular file, too big, ...)."""


class GradingTimeout(Exception):
    """Loading and evaluating one file took longer than the job's time limit."""


# -- the client's side: which files, refused or copied ----------------------------------------------------------
def collect(paths: Sequence, suffixes: tuple[str, ...]) -> list[tuple[str, str]]:
    """(name as shown, absolute path) of every submission: a file as given, a folder's files with `suffixes` in
    name order. Paths are made absolute without following links, so that a symbolic link is seen as one."""
    found: dict[str, str] = {}
    for given in paths:
        shown = str(given)
        path = os.path.abspath(os.path.expanduser(shown))
        if not os.path.lexists(path):
            raise ValueError(f"{shown}: no such file or folder")
        if os.path.isdir(path) and not os.path.islink(path):
            members = sorted(n for n in os.listdir(path) if os.path.splitext(n)[1].lower() in suffixes)
            if not members:
                raise ValueError(f"{shown}: a folder with no {' or '.join('*' + s for s in suffixes)} file in it")
            for name in members:
                found.setdefault(os.path.join(path, name), os.path.join(shown, name))
        else:
            found.setdefault(path, shown)
    if len(found) > MAX_SUBMISSIONS:
        raise ValueError(f"{len(found)} files given; at most {MAX_SUBMISSIONS} are graded in one job")
    return [(shown, path) for path, shown in found.items()]


def _not_regular(mode: int) -> str:
    what = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a socket"
            if stat.S_ISSOCK(mode) else "a device" if stat.S_ISBLK(mode) or stat.S_ISCHR(mode) else "not a file")
    return f"{what}, not a regular file"


def read_checked(path: str, limit: int, target: Path | None = None) -> tuple[str, int]:
    """(sha256, size) of the regular file `path`, copied to `target` when given (atomically). Raises
    SubmissionRefused (the reason) for a symbolic link, anything else that is not a regular file, a file over
    `limit` bytes (also one that grows past it while read) or one that cannot be read. Opened without
    following a link and without blocking, so a file swapped for a link or a FIFO after the check is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SubmissionRefused(f"a symbolic link (to {os.readlink(path)}); only regular files are graded, "
                                    "give the file itself") from None
        raise SubmissionRefused(f"cannot be read ({exc.strerror})") from None
    digest, size, tmp = hashlib.sha256(), 0, None
    with os.fdopen(fd, "rb") as src:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SubmissionRefused(_not_regular(st.st_mode))
        if st.st_size > limit:
            raise SubmissionRefused(f"{st.st_size:,} bytes, over the limit of {limit:,} bytes for this kind of file")
        out = None
        if target is not None:
            tmp = target.with_name(target.name + ".tmp")
            out = open(tmp, "wb")
        try:
            while chunk := src.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise SubmissionRefused(f"grew past the limit of {limit:,} bytes while it was read")
                digest.update(chunk)
                if out is not None:
                    out.write(chunk)
        except BaseException:
            if out is not None:
                out.close()
                tmp.unlink(missing_ok=True)
            raise
    if out is not None:
        out.close()
        os.replace(tmp, target)
    return digest.hexdigest(), size


def refusal(path: str, suffix: str, suffixes: tuple[str, ...]) -> str | None:
    """Why the file at `path` is not graded, from what lstat says (None: it will be read and copied)."""
    if suffix not in suffixes:
        return f"its name ends in {suffix or 'no suffix'!r}; expected {' or '.join(suffixes)}"
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"cannot be examined ({exc.strerror})"
    if stat.S_ISLNK(st.st_mode):
        return f"a symbolic link (to {os.readlink(path)}); only regular files are graded, give the file itself"
    if not stat.S_ISREG(st.st_mode):
        return _not_regular(st.st_mode)
    if st.st_size > SIZE_LIMITS[suffix]:
        return (f"{st.st_size:,} bytes, over the limit of {SIZE_LIMITS[suffix]:,} bytes for {suffix} files "
                "(a valid submission is far smaller)")
    return None


def run_name(index: int, shown: str, count: int) -> str:
    """`007-alice_model`: the position in the order given, then the file's name without its suffix, made
    path-safe (64 characters at most; the position keeps names unique)."""
    stem = os.path.splitext(os.path.basename(shown))[0]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).lstrip(".") or "file"
    return f"{index + 1:0{max(3, len(str(count)))}d}-{stem}"[:64]


def staged_copy(job_dir: Path, run: str, suffix: str) -> Path:
    """Where `stage` copies a run's file: submissions/<run><suffix> in the job folder."""
    return Path(job_dir) / "submissions" / f"{run}{suffix}"


def refusal_note(job_dir: Path, run: str) -> Path:
    """Written by `stage` instead of the copy when a file changed after it was checked: the reason."""
    return Path(job_dir) / "submissions" / f"{run}.refused"


# -- the time limit ---------------------------------------------------------------------------------------------
@contextmanager
def time_limit(seconds: float):
    """GradingTimeout in this thread once `seconds` have passed: SIGALRM from a real-time interval timer.
    Celery's prefork pool runs each task in its process's main thread, where Python handles signals; its own
    soft time limit is SIGUSR1 and its hard limit a kill from the parent, so neither meets this one. The previous
    handler and timer are back on the way out. Elsewhere than the main thread only the task's limits apply."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise GradingTimeout(f"loading and evaluating took longer than the time limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    start = time.monotonic()
    earlier, interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:  # even when the alarm lands on the way out, the previous handler comes back
            signal.signal(signal.SIGALRM, previous)
        if earlier:  # someone else's timer: give it back what is left of it
            signal.setitimer(signal.ITIMER_REAL, max(earlier - (time.monotonic() - start), 1e-3), interval)


# -- Keras files: the allow-list, read with h5py ----------------------------------------------------------------
@dataclass(frozen=True)
class KerasLayer:
    kind: str                 # dense, dropout or activation
    name: str
    units: int = 0            # dense: its outputs
    activation: str = "linear"
    use_bias: bool = True


@dataclass(frozen=True)
class KerasArchitecture:
    n_inputs: int
    layers: tuple[KerasLayer, ...]

    @property
    def dense(self) -> list[tuple[int, KerasLayer]]:
        """(inputs, layer) of every Dense layer, in order."""
        out, width = [], self.n_inputs
        for layer in self.layers:
            if layer.kind == "dense":
                out.append((width, layer))
                width = layer.units
        return out

    @property
    def n_params(self) -> int:
        return sum(n_in * d.units + (d.units if d.use_bias else 0) for n_in, d in self.dense)

    @property
    def logits_ops(self) -> tuple[tuple, ...]:
        """What computes the output's logit: Dense and Activation ops, the final sigmoid left off (its loss is
        taken from the logit, as Keras does), Dropout left out (the identity when evaluating); no names, so
        that equal architectures share one built model."""
        ops = [("dense", d.units, d.activation, d.use_bias) if d.kind == "dense" else ("activation", d.activation)
               for d in self.layers if d.kind != "dropout"]
        while ops[-1] == ("activation", "linear"):
            ops.pop()
        if ops[-1][0] == "activation":  # Activation("sigmoid") after a linear Dense(1)
            ops.pop()
        else:                           # Dense(1, activation="sigmoid")
            ops[-1] = ("dense", ops[-1][1], "linear", ops[-1][3])
        return tuple(ops)

    def describe(self) -> str:
        parts = [str(self.n_inputs)]
        for d in self.layers:
            parts.append(f"Dense({d.units}, {d.activation})" if d.kind == "dense" else
                         "Dropout" if d.kind == "dropout" else f"Activation({d.activation})")
        return " → ".join(parts)


def _sources(nodes) -> list[str]:
    """The layer names a functional layer's `inbound_nodes` (or input_layers / output_layers) refer to, in the
    formats of Keras 3 ({"keras_history": [name, 0, 0]}) and Keras 2 ([[name, 0, 0, {}]])."""
    found: list[str] = []

    def walk(value) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("keras_history"), list) and value["keras_history"]:
                found.append(str(value["keras_history"][0]))
                return
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            if len(value) >= 3 and isinstance(value[0], str) and isinstance(value[1], int):
                found.append(value[0])
                return
            for v in value:
                walk(v)

    walk(nodes)
    return found


def _input_width(shape, where: str) -> int:
    if (not isinstance(shape, list) or len(shape) != 2 or not isinstance(shape[1], int)
            or isinstance(shape[1], bool)):
        raise Rejected(f"{where} has input shape {json.dumps(shape)}; expected [null, {KERAS_INPUTS}] "
                       f"(the {KERAS_INPUTS}-bit sequences)")
    return shape[1]


def _activation(value, layer: str) -> str:
    value = "linear" if value is None else value
    if not isinstance(value, str) or value not in KERAS_ACTIVATIONS:
        raise Rejected(f"layer {layer!r}: activation {json.dumps(value)[:120]} is not allowed; allowed: "
                       f"{', '.join(KERAS_ACTIVATIONS)}")
    return value


def check_keras_config(config) -> KerasArchitecture:
    """The architecture a Keras `model_config` (parsed JSON) describes, if it passes the allow-list: a
    Sequential or a functional chain of KERAS_LAYERS with KERAS_ACTIVATIONS, KERAS_INPUTS inputs, one sigmoid
    output, at most KERAS_MAX_PARAMS parameters. Rejected otherwise, naming the layer or attribute."""
    cls = config.get("class_name") if isinstance(config, dict) else None
    if cls not in ("Sequential", "Functional", "Model"):
        raise Rejected(f"model class {json.dumps(cls)[:80]} is not allowed; expected a Sequential model or a "
                       "functional Model that is a plain chain of layers")
    body = config.get("config")
    entries = body.get("layers") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not entries:
        raise Rejected("the model configuration lists no layers")
    if len(entries) > KERAS_MAX_LAYERS:
        raise Rejected(f"{len(entries)} layers; at most {KERAS_MAX_LAYERS} are graded")
    names = []
    for i, entry in enumerate(entries):
        cfg = entry.get("config") if isinstance(entry, dict) else None
        if not isinstance(cfg, dict):
            raise Rejected(f"layer #{i + 1} has no configuration")
        names.append(str(entry.get("name") or cfg.get("name") or f"#{i + 1}"))
    if cls != "Sequential":  # a functional model: each layer fed by the one before it, and nothing else
        for i, entry in enumerate(entries):
            expected = [names[i - 1]] if i else []
            got = _sources(entry.get("inbound_nodes", []))
            if got != expected:
                raise Rejected(f"layer {names[i]!r} takes its input from {got or 'nothing'}; expected "
                               f"{expected or 'nothing'}: only a plain chain of layers is graded")
        ends = (_sources(body.get("input_layers")), _sources(body.get("output_layers")))
        if ends != ([names[0]], [names[-1]]):
            raise Rejected(f"the model's inputs {ends[0]} and outputs {ends[1]} are not the chain's first layer "
                           f"{names[0]!r} and last layer {names[-1]!r}")
    n_inputs, layers = None, []
    for i, (entry, name) in enumerate(zip(entries, names)):
        kind, cfg = entry.get("class_name"), entry["config"]
        if kind not in KERAS_LAYERS:
            raise Rejected(f"layer {name!r} of class {json.dumps(kind)[:80]} is not allowed; allowed: "
                           f"{', '.join(KERAS_LAYERS)}")
        shape = cfg.get("batch_shape", cfg.get("batch_input_shape"))
        if kind == "InputLayer" or (i == 0 and shape is not None):
            if i:
                raise Rejected(f"layer {name!r}: an InputLayer is allowed only first")
            n_inputs = _input_width(shape, f"layer {name!r}")
        if kind == "Dense":
            units, use_bias = cfg.get("units"), cfg.get("use_bias", True)
            if not isinstance(units, int) or isinstance(units, bool) or not 1 <= units <= KERAS_MAX_UNITS:
                raise Rejected(f"layer {name!r}: units {json.dumps(units)[:40]}; expected 1..{KERAS_MAX_UNITS}")
            if not isinstance(use_bias, bool):
                raise Rejected(f"layer {name!r}: use_bias {json.dumps(use_bias)[:40]}; expected true or false")
            layers.append(KerasLayer("dense", name, units, _activation(cfg.get("activation"), name), use_bias))
        elif kind == "Dropout":
            rate = cfg.get("rate")
            if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 <= rate < 1:
                raise Rejected(f"layer {name!r}: dropout rate {json.dumps(rate)[:40]}; expected 0 <= rate < 1")
            layers.append(KerasLayer("dropout", name))
        elif kind == "Activation":
            layers.append(KerasLayer("activation", name, activation=_activation(cfg.get("activation"), name)))
    if n_inputs is None and body.get("build_input_shape") is not None:
        n_inputs = _input_width(body["build_input_shape"], "the model")
    if n_inputs is None:
        raise Rejected("the model's input shape is not stated (no InputLayer, batch_input_shape or "
                       "build_input_shape)")
    if n_inputs != KERAS_INPUTS:
        raise Rejected(f"the input width is {n_inputs}; expected {KERAS_INPUTS} (the {KERAS_INPUTS}-bit sequences)")
    arch = KerasArchitecture(n_inputs, tuple(layers))
    dense = [d for _, d in arch.dense]
    if not dense:
        raise Rejected("the model has no Dense layer")
    last = layers.index(dense[-1])
    applied = [a for a in [dense[-1].activation] + [d.activation for d in layers[last + 1:] if d.kind == "activation"]
               if a != "linear"]
    if dense[-1].units != 1 or applied != ["sigmoid"]:
        raise Rejected(f"the output is {dense[-1].units} unit(s) with activation {' then '.join(applied) or 'linear'} "
                       f"(layer {dense[-1].name!r}); expected one sigmoid unit")
    if arch.n_params > KERAS_MAX_PARAMS:
        raise Rejected(f"{arch.n_params:,} parameters, over the limit of {KERAS_MAX_PARAMS:,}")
    return arch


def _member(group: h5py.Group, path: str, what: str):
    """`group[path]`, each step a link stored in this file (an external or soft link is refused unfollowed)."""
    for part in [p for p in path.split("/") if p]:
        link = group.get(part, getlink=True)
        if link is None:
            raise Rejected(f"{what} is missing (no {part!r} in {group.name})")
        if not isinstance(link, h5py.HardLink):
            raise Rejected(f"{what} is a link to elsewhere ({type(link).__name__}); only data stored in the file "
                           "is read")
        group = group[part]
    return group


def read_keras_model(path) -> tuple[KerasArchitecture, list[np.ndarray]]:
    """The checked architecture and its weights [kernel (in, units), bias (units,), ...] as float32, read with
    h5py from a Keras HDF5 model file; no Keras involved. Rejected for anything else."""
    path = Path(path)
    if not h5py.is_hdf5(path):
        raise Rejected("not an HDF5 file (no HDF5 signature); expected a Keras model saved with "
                       "model.save('name.h5')")
    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            if raw is None:
                raise Rejected("the root attribute 'model_config' is missing; expected a whole model saved with "
                               "model.save('name.h5'), not only its weights")
            if isinstance(raw, bytes):
                raw = raw.decode("utf-8", "replace")
            if not isinstance(raw, str):
                raise Rejected(f"the root attribute 'model_config' is {type(raw).__name__}, not JSON text")
            if len(raw) > KERAS_MAX_CONFIG:
                raise Rejected(f"the root attribute 'model_config' has {len(raw):,} characters, over the limit of "
                               f"{KERAS_MAX_CONFIG:,}")
            try:
                config = json.loads(raw)
            except (ValueError, RecursionError) as exc:
                raise Rejected(f"the root attribute 'model_config' is not JSON ({exc})") from None
            arch = check_keras_config(config)
            return arch, _keras_weights(f, arch)
    except Rejected:
        raise
    except RecursionError:
        raise Rejected("the model configuration is nested too deeply") from None
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise Rejected(f"not a complete HDF5 file (truncated or corrupt: {exc})") from None


def _keras_weights(f: h5py.File, arch: KerasArchitecture) -> list[np.ndarray]:
    root = _member(f, "model_weights", "the group 'model_weights'")
    weights = []
    for n_in, layer in arch.dense:
        group = _member(root, layer.name, f"the weights of layer {layer.name!r}")
        names = np.atleast_1d(group.attrs.get("weight_names", np.array([])))
        expected = [(n_in, layer.units)] + ([(layer.units,)] if layer.use_bias else [])
        if len(names) != len(expected):
            raise Rejected(f"layer {layer.name!r} stores {len(names)} weight arrays; expected {len(expected)} "
                           f"(kernel{' and bias' if layer.use_bias else ''})")
        for raw, shape in zip(names, expected):
            name = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            ds = _member(group, name, f"weight {name!r} of layer {layer.name!r}")
            if not isinstance(ds, h5py.Dataset) or ds.dtype.kind != "f" or ds.shape != shape:
                got = f"{ds.dtype} {ds.shape}" if isinstance(ds, h5py.Dataset) else "a group"
                raise Rejected(f"layer {layer.name!r}: weight {name!r} is {got}; expected floats of shape {shape}")
            if ds.external or ds.is_virtual:
                raise Rejected(f"layer {layer.name!r}: weight {name!r} is stored outside the file")
            chunks = int(np.prod([-(-n // c) for n, c in zip(shape, ds.chunks)])) if ds.chunks else 1
            if chunks > KERAS_MAX_CHUNKS:  # each chunk costs a lookup: a million tiny ones take seconds to read
                raise Rejected(f"layer {layer.name!r}: weight {name!r} is stored in {chunks:,} chunks; at most "
                               f"{KERAS_MAX_CHUNKS:,} are read (Keras writes one)")
            values = np.asarray(ds[()], dtype=np.float32)
            if not np.isfinite(values).all():
                raise Rejected(f"layer {layer.name!r}: weight {name!r} holds NaN or infinite values")
            weights.append(values)
    return weights


@lru_cache(maxsize=16)
def _keras_network(n_inputs: int, ops: tuple[tuple, ...]):
    """(model, forward) for one architecture, built once per pool process from the checked ops (never from a
    file's configuration); forward(x) gives the output's logit (rows, 1), traced once."""
    import keras
    import tensorflow as tf

    layers = [keras.Input(shape=(n_inputs,))]
    for op in ops:
        layers.append(keras.layers.Dense(op[1], activation=op[2], use_bias=op[3]) if op[0] == "dense"
                      else keras.layers.Activation(op[1]))
    model = keras.Sequential(layers)
    forward = tf.function(lambda x: model(x, training=False),
                          input_signature=[tf.TensorSpec([None, n_inputs], tf.float32)])
    return model, forward


def grade_keras_file(path, x: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy (output > 0.5 counts as human) and binary cross-entropy (from the logit, as Keras computes it)
    of a Keras HDF5 model file on x (rows, 20) float32, y (rows,) in {0, 1}; plus n_params, architecture."""
    import tensorflow as tf

    arch, weights = read_keras_model(path)
    model, forward = _keras_network(arch.n_inputs, arch.logits_ops)
    try:
        model.set_weights(weights)
        logits = np.concatenate([forward(tf.constant(x[s:s + EVAL_ROWS])).numpy()
                                 for s in range(0, len(x), EVAL_ROWS)]).ravel()
    except BaseException:  # e.g. the time limit mid-way: never reuse a half-updated model
        _keras_network.cache_clear()
        raise
    if not np.isfinite(logits).all():
        raise Rejected(f"its output is NaN or infinite for {int((~np.isfinite(logits)).sum())} of {len(x)} sequences")
    z, labels = tf.constant(logits), tf.constant(np.asarray(y, np.float32))
    accuracy = float(np.mean((tf.sigmoid(z).numpy() > 0.5) == (np.asarray(y) == 1)))
    loss = float(tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=z)))
    return {"accuracy": accuracy, "loss": loss, "n_params": arch.n_params, "architecture": arch.describe()}


# -- .npz files: the engine's layout, read with allow_pickle=False ----------------------------------------------
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


# -- held-out data, read once per pool process ------------------------------------------------------------------
@lru_cache(maxsize=4)
def human_machine_held_out(data: str, datasets_dir: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(x, y, label): all of `data` when given, else the validation part of the course file as Problem 4
    splits it (worker/experiments/human_machine.py split_data with its default fraction and split seed)."""
    from worker.experiments import human_machine

    path = Path(data) if data else datasets.find_human_machine(Path(datasets_dir))
    x, y = datasets.load_human_machine(path)
    if data:
        return x, y, f"all of {path} ({len(y):,} sequences, --data)"
    _, (x_val, y_val) = human_machine.split_data(x, y)
    p = human_machine.DEFAULT_PARAMS
    return x_val, y_val, (f"the validation part of {path}: the stratified {p['val_fraction']:.0%} that Problem 4 "
                          f"holds out (split seed {p['split_seed']}), {len(y_val):,} sequences")


@lru_cache(maxsize=2)
def mnist_test_set(datasets_dir: str) -> tuple[np.ndarray, np.ndarray, str]:
    x, y = datasets.mnist_test(Path(datasets_dir))
    return x, y, f"{Path(datasets_dir) / datasets.MNIST_TEST_FILE} ({len(y):,} test images)"


# -- the table ---------------------------------------------------------------------------------------------------
CSV_COLUMNS = ("rank", "file", "accuracy", "loss", "n_params", "size", "sha256", "error")


def ranked(grades: Sequence[dict]) -> list[dict]:
    """The graded rows, best first: higher accuracy, then lower loss, then the order given."""
    done = [g for g in grades if g.get("error") is None]
    return sorted(done, key=lambda g: (-g["accuracy"], g["loss"], g["index"]))


def grades_csv(grades: Sequence[dict]) -> str:
    """grades.csv: the ranked table, then the files that could not be graded with their reasons."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for rank, g in enumerate(ranked(grades), 1):
        writer.writerow({**g, "rank": rank})
    writer.writerows(g for g in grades if g.get("error") is not None)
    return buf.getvalue()


# -- the kinds ---------------------------------------------------------------------------------------------------
class GradeKind(JobKind):
    """What both grading kinds share; each says which files, how one is graded and on which data."""
    group_help = ("Grade a class's submissions in parallel: one run per file, each file checked before anything "
                  "loads it.")
    suffixes: tuple[str, ...] = ()
    metric: str = ""     # the loss's name in the report
    result_keys = ("grades", "graded", "failed", "data", "csv", "limits")

    @property
    def options(self) -> tuple[Option, ...]:
        return (Option("path", f"submissions: {' / '.join(self.suffixes)} files or folders of them", argument=True,
                       many=True, path=True),
                *self.extra_options,
                Option("time_limit", "seconds one file may take to load and evaluate; past it that file fails "
                       "alone", int, default=TIME_LIMIT_S))

    extra_options: tuple[Option, ...] = ()

    def plan(self, params: dict) -> Plan:
        limit = TIME_LIMIT_S if params.get("time_limit") is None else params["time_limit"]
        if not isinstance(limit, int) or not 1 <= limit <= 3600:
            raise ValueError(f"--time-limit {limit!r}: expected whole seconds in 1..3600")
        files = collect(params.get("path") or (), self.suffixes)
        if not files:
            raise ValueError("no submission given: PATH is a model file or a folder of them")
        runs = []
        for i, (shown, path) in enumerate(files):
            suffix = os.path.splitext(path)[1].lower()
            refused, sha256, size = refusal(path, suffix, self.suffixes), None, None
            if refused is None:
                try:
                    sha256, size = read_checked(path, SIZE_LIMITS[suffix])
                except SubmissionRefused as exc:
                    refused = str(exc)
            config = {"index": i, "file": shown, "source": path, "suffix": suffix, "size": size, "sha256": sha256,
                      "refused": refused}
            runs.append(RunSpec(run_name(i, shown, len(files)), config, 1))
        stored = {"submissions": len(runs), "time_limit": limit, **self.data_params(params)}
        folder = datasets.check_datasets_option(params.get("datasets"))
        if folder is not None:
            stored["datasets"] = folder
        return Plan(stored, runs)

    def data_params(self, params: dict) -> dict:
        return {}

    def stage(self, job_id: str, job_plan: Plan, job_dir: Path) -> None:
        """Copy each accepted file to submissions/<run><suffix>; a file that changed since `plan` read it (a
        link now, bigger, other bytes) is not copied: submissions/<run>.refused says why, and its run fails."""
        (Path(job_dir) / "submissions").mkdir(parents=True, exist_ok=True)
        for run in job_plan.runs:
            cfg = run.config
            if cfg["refused"]:
                continue
            target = confined(job_dir, staged_copy(job_dir, run.name, cfg["suffix"]))
            try:
                sha256, _ = read_checked(cfg["source"], SIZE_LIMITS[cfg["suffix"]], target)
                if sha256 != cfg["sha256"]:
                    target.unlink()
                    raise SubmissionRefused("changed between being checked and being copied")
            except SubmissionRefused as exc:
                refusal_note(job_dir, run.name).write_text(f"{exc}\n")

    def held_out(self, params: dict, settings) -> tuple[np.ndarray, np.ndarray, str]:
        """(x, y, label): the data the files are graded on, read once per process, and what it is in words."""
        raise NotImplementedError

    def ready(self, threads: int) -> None:
        """What grading needs before the first file's time limit starts (TensorFlow's import)."""

    def grade(self, path: Path, x: np.ndarray, y: np.ndarray, threads: int) -> dict:
        raise NotImplementedError

    def train(self, ctx: RunContext) -> dict:
        cfg = ctx.run.config
        if cfg["refused"]:
            raise SubmissionRefused(f"{cfg['file']}: {cfg['refused']}")
        copy, note = staged_copy(ctx.job_dir, ctx.run.name, cfg["suffix"]), refusal_note(ctx.job_dir, ctx.run.name)
        if note.is_file():
            raise SubmissionRefused(f"{cfg['file']}: {note.read_text().strip()}")
        self.ready(ctx.threads)  # outside the time limit, as is reading the data
        x, y, label = self.held_out(ctx.job.params, ctx.settings)
        start = time.perf_counter()
        try:
            with time_limit(ctx.job.params["time_limit"]):
                sha256, _ = read_checked(str(copy), SIZE_LIMITS[cfg["suffix"]])
                if sha256 != cfg["sha256"]:
                    raise Rejected(f"its copy in the job folder (sha256 {sha256[:12]}…) is not the file submitted "
                                   f"(sha256 {cfg['sha256'][:12]}…)")
                graded = self.grade(copy, x, y, ctx.threads)
        except Rejected as exc:
            raise SubmissionRejected(f"{cfg['file']}: {exc}") from None
        except (SubmissionRefused, GradingTimeout) as exc:
            raise type(exc)(f"{cfg['file']}: {exc}") from None
        seconds = time.perf_counter() - start
        ctx.record_epoch({"epoch": 1, "val_loss": graded["loss"], "val_accuracy": graded["accuracy"],
                          "seconds": seconds})
        return {"file": cfg["file"], "sha256": sha256, "size": cfg["size"], **graded, "data": label,
                "seconds": seconds}

    def finalize(self, ctx: JobContext) -> dict:
        """Every file's row in the order given (a refused, rejected or timed-out one with its error), and
        grades.csv. The job succeeds even when no file could be graded: the table is its result."""
        grades, label = [], None
        for run in sorted(ctx.job.runs, key=lambda r: r.config["index"]):
            cfg, result = run.config, run.result or {}
            label = label or result.get("data")
            error = None if run.state == "succeeded" else run.error or f"the run ended {run.state}"
            if error:  # the row names the file already: "SubmissionRejected: <file>: why" -> "SubmissionRejected: why"
                error = error.replace(f": {cfg['file']}: ", ": ", 1)
            grades.append({"index": cfg["index"], "file": cfg["file"], "run": run.name,
                           "sha256": result.get("sha256", cfg["sha256"]), "size": cfg["size"],
                           **{k: result.get(k) for k in ("accuracy", "loss", "n_params", "architecture")},
                           "error": error})
        if label is None:
            try:
                label = self.held_out(ctx.job.params, ctx.settings)[2]
            except Exception as exc:  # noqa: BLE001 - only the label of a job with no graded file
                label = f"(not read: {type(exc).__name__}: {exc})"
        (ctx.job_dir / "grades.csv").write_text(grades_csv(grades))
        graded = sum(g["error"] is None for g in grades)
        return {"grades": grades, "graded": graded, "failed": len(grades) - graded, "data": label,
                "csv": "grades.csv", "limits": self.limits()}

    def limits(self) -> str:
        return ""

    def figures(self, job: JobStatus, rows: Sequence[EpochRow], out_dir: Path) -> list[Path]:
        return []  # one number per file: the report's table says it better than a figure per file

    def report(self, job: JobStatus, rows: Sequence[EpochRow]) -> str:
        from shared.reports import markdown_table

        lines = [f"# {self.title} (job `{job.job_id}`)", ""]
        result = job.result or {}
        if job.state != "succeeded" or "grades" not in result:
            return "\n".join(lines + [f"State: **{job.state}**" + (f" — {job.error}" if job.error else "")]) + "\n"
        grades = result["grades"]
        lines += [f"Graded on {result['data']}.", "", f"{result['graded']} of {len(grades)} file(s) graded, "
                  f"{result['failed']} could not be. Limits: {result['limits']}", "", "## Ranking", ""]
        table = [[rank, g["file"], f"{g['accuracy']:.4f}", f"{g['loss']:.4f}", f"{g['n_params']:,}",
                  g["sha256"][:12]] for rank, g in enumerate(ranked(grades), 1)]
        lines += [markdown_table(["rank", "file", "accuracy", self.metric, "parameters", "sha256"], table,
                                 ["r", "l", "r", "r", "r", "l"]) if table else "No file could be graded.", ""]
        failed = [g for g in grades if g["error"] is not None]
        if failed:
            lines += ["## Not graded", ""] + [f"- `{g['file']}`: {g['error']}" for g in failed] + [""]
        lines.append("The same table, for a gradebook: [grades.csv](grades.csv) (failures last, with their reasons).")
        return "\n".join(lines) + "\n"

    def summary(self, job: JobStatus) -> list[str]:
        result = job.result or {}
        if "grades" not in result:
            return []
        lines = [f"graded {result['graded']} of {len(result['grades'])} file(s) on {result['data']}"]
        best = ranked(result["grades"])
        if best:
            lines.append(f"best: {best[0]['file']}, accuracy {best[0]['accuracy']:.2%}, {self.metric} "
                         f"{best[0]['loss']:.4f}")
        if result["failed"]:
            lines.append(f"{result['failed']} file(s) could not be graded; the report and grades.csv say why")
        return lines


class GradeHumanMachine(GradeKind):
    name = "grade-human-machine"
    command = ("grade", "human-machine")
    title = "Grades — Problem 4 models (human or machine)"
    help = ("Grade Problem 4 submissions: each PATH a Keras model file (.h5, .hdf5) or a folder of them. One run "
            "per file, in parallel: its sha256, size, accuracy and binary cross-entropy on held-out sequences, "
            "number of parameters, or why it was not graded. Files are never run: the model configuration is "
            "checked against an allow-list (InputLayer, Dense, Dropout, Activation in a chain; 20 inputs; one "
            "sigmoid output) before the weights are read, and Keras never loads the file itself.")
    suffixes = (".h5", ".hdf5")
    metric = "binary cross-entropy"
    extra_options = (Option("data", "held-out human/machine file (keys human and machine) to grade on, all of it",
                            path=True, default="the validation part of the course file binary_random*.hdf5 in "
                            "the datasets folder: the stratified 20 % Problem 4 holds out, split seed 0"),)

    def data_params(self, params: dict) -> dict:
        return {"data": str(Path(params["data"]).resolve()) if params.get("data") else None}

    def check_inputs(self, params: dict, settings) -> None:
        datasets.require_human_machine(settings.job_datasets_dir(params), params.get("data"))

    def ready(self, threads: int) -> None:
        from worker.experiments.keras_common import configure_tensorflow

        configure_tensorflow(threads)

    def held_out(self, params: dict, settings):
        return human_machine_held_out(params.get("data") or "", str(settings.job_datasets_dir(params)))

    def grade(self, path: Path, x, y, threads: int) -> dict:
        return grade_keras_file(path, x, y)

    def limits(self) -> str:
        return (f"{SIZE_LIMITS['.h5'] // MB} MB per file, {KERAS_MAX_PARAMS:,} parameters, {KERAS_MAX_LAYERS} "
                f"layers of {', '.join(KERAS_LAYERS)}, {KERAS_MAX_UNITS} units per layer.")


class GradeMnist(GradeKind):
    name = "grade-mnist"
    command = ("grade", "mnist")
    title = "Grades — Problem 1 weights (MNIST)"
    help = ("Grade Problem 1 submissions: each PATH a numpy weight file (.npz, the layout the sweep writes: W0, "
            "b0, ..., activation; see docs/grading.md) or a folder of them. One run per file, in parallel: its "
            "sha256, size, accuracy and cross-entropy on mnist_testdata.hdf5 with the numpy engine, or why it was "
            "not graded. Arrays are checked by name, dtype and shape before any is read; pickles are never loaded.")
    suffixes = (".npz",)
    metric = "cross-entropy"
    downloads = ("mnist",)

    def check_inputs(self, params: dict, settings) -> None:
        datasets.check_course_mnist(settings.job_datasets_dir(params) / datasets.MNIST_TEST_FILE)

    def held_out(self, params: dict, settings):
        return mnist_test_set(str(settings.job_datasets_dir(params)))

    def grade(self, path: Path, x, y, threads: int) -> dict:
        from worker.engine import blas_threads

        with blas_threads(threads):
            return grade_npz_file(path, x, y)

    def limits(self) -> str:
        return (f"{SIZE_LIMITS['.npz'] // MB} MB per file, {NPZ_MAX_PARAMS:,} parameters, {NPZ_MAX_HIDDEN} hidden "
                f"layers of 1..{NPZ_MAX_WIDTH} units.")


KINDS = (GradeHumanMachine(), GradeMnist())
