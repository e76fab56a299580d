"""One way to turn results into JSON: numpy values, tuples and Paths become plain JSON values.

Non-finite floats become None because PostgreSQL's json type refuses NaN and infinity (SQLite and
``json.dumps`` would keep them), so a result must not depend on where it is stored.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np


def to_jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays as Python numbers/lists, tuples as lists, Paths as strings,
    mapping keys as strings and NaN/±inf as None, recursively. Other values are returned as they are
    (``json.dumps`` then names what it cannot encode)."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())  # again: np.float32(nan).item() is a non-finite float
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
