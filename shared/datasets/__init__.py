"""Dataset loaders for the HW3 experiments: the one place where input files are read.

Every loader returns plain numpy arrays with fixed dtypes, whatever encoding the file used:

* images ``x``: ``float32``, shape ``(N, 784)``, C-contiguous, pixel values in ``[0, 1]``;
* class labels ``y``: ``int64``, shape ``(N,)``, values ``0..9``;
* human/machine sequences ``x``: ``float32``, shape ``(N, 20)``, values in ``{-1, +1}``;
  labels ``y``: ``int64``, ``1`` = human, ``0`` = machine.

Files are looked for in a datasets directory (``get_settings().datasets_dir``, set by the
environment variable ``HW3_DATASETS``); callers pass that directory in. Loading never downloads.

One module per concern:

``common``         :class:`DatasetError`, file/HDF5 checks, array validation, the ``--datasets`` option
``mnist``          course-format MNIST (``mnist_traindata.hdf5``, ``mnist_testdata.hdf5``; encodings there)
``fashion``        Fashion-MNIST from keras' IDX files
``human_machine``  the course's human/machine file and how it is found
``synthetic``      a synthetic stand-in for the human/machine data
``download``       :func:`ensure_mnist` and :func:`ensure_fashion_mnist`, called only on an explicit request
``inputs``         what each problem reads: checked before a job is created (headers and shapes), and listed
                   input by input (``hw3-submit datasets check``)

Every problem found in a file raises :class:`DatasetError`, whose message names the file, the
key when there is one, what is wrong and what was expected.
"""
from __future__ import annotations

from .common import N_CLASSES, N_PIXELS, SEQ_LEN, DatasetError, check_datasets_option
from .download import FETCHERS, ensure_fashion_mnist, ensure_mnist
from .fashion import FASHION_CLASSES, FASHION_DIR, FASHION_FILES, check_fashion_mnist, idx_shape, load_fashion_mnist
from .human_machine import HUMAN_MACHINE_PATTERN, check_human_machine, find_human_machine, load_human_machine
from .inputs import (
    FASHION_INPUTS,
    MNIST_INPUTS,
    InputStatus,
    inspect_folder,
    require_fashion_mnist,
    require_human_machine,
    require_mnist,
)
from .mnist import (
    MNIST_TEST_FILE,
    MNIST_TRAIN_FILE,
    N_TRAIN,
    N_VAL,
    check_course_mnist,
    load_course_mnist,
    mnist_full_train,
    mnist_test,
    mnist_train_val,
    split_train_val,
)
from .synthetic import synthetic_human_machine

__all__ = [
    "DatasetError",
    "MNIST_TRAIN_FILE",
    "MNIST_TEST_FILE",
    "FASHION_DIR",
    "FASHION_FILES",
    "HUMAN_MACHINE_PATTERN",
    "N_TRAIN",
    "N_VAL",
    "N_PIXELS",
    "N_CLASSES",
    "SEQ_LEN",
    "FASHION_CLASSES",
    "load_course_mnist",
    "mnist_train_val",
    "split_train_val",
    "mnist_full_train",
    "mnist_test",
    "load_fashion_mnist",
    "find_human_machine",
    "load_human_machine",
    "synthetic_human_machine",
    "ensure_mnist",
    "ensure_fashion_mnist",
    "FETCHERS",
    "check_datasets_option",
    "check_course_mnist",
    "check_fashion_mnist",
    "check_human_machine",
    "idx_shape",
    "MNIST_INPUTS",
    "FASHION_INPUTS",
    "InputStatus",
    "inspect_folder",
    "require_mnist",
    "require_fashion_mnist",
    "require_human_machine",
]
