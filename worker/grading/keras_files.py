"""Keras HDF5 files (Problem 4's models), read with h5py only: the root attribute `model_config` must pass the
allow-list (check_keras_config), then each Dense layer's kernel and bias are read, their shapes and dtypes
checked before a byte is. Keras never sees the file: the checked architecture is built here from the
allow-listed pieces (once per architecture and pool process), the weights set and the held-out sequences
evaluated. TensorFlow and Keras are imported inside the functions that build and evaluate, never at module
level."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import h5py
import numpy as np

from worker.grading.submissions import Rejected

KERAS_INPUTS = 20          # the 20-bit sequences
KERAS_LAYERS = ("InputLayer", "Dense", "Dropout", "Activation")
KERAS_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "elu", "selu", "softplus", "softsign", "swish", "silu",
                     "gelu", "leaky_relu", "relu6", "hard_sigmoid")
KERAS_MAX_LAYERS, KERAS_MAX_UNITS, KERAS_MAX_PARAMS = 32, 4096, 1_000_000
KERAS_MAX_CONFIG = 1_000_000   # characters of model_config
KERAS_MAX_CHUNKS = 1024        # HDF5 chunks per weight array
EVAL_ROWS = 2048           # rows per forward pass: activations stay under EVAL_ROWS x 4096 floats per layer


# -- the allow-list: the architecture a model_config describes --------------------------------------------------
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


# -- the weights, read with h5py from data stored in the file ---------------------------------------------------
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


# -- the checked network, built and evaluated with TensorFlow ---------------------------------------------------
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
