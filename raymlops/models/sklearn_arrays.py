"""A twin of a DataFrame-fitted scikit-learn estimator that takes a plain array. Pure.

An estimator fitted on a DataFrame checks the column names of every input, so the flavor
handed it a DataFrame per request; for a one-row request of 30 numeric features that cost
about 0.5 ms of a 0.75 ms predict (pandas in every step's input validation), against 0.25 ms
for the same pipeline given an array. When every feature is numeric and the estimator was
fitted on the signature's columns in their order, the flavor keeps a copy whose fitted column
names are removed (the names are the signature's, checked once here) and answers with arrays —
only after the twin gave the original's answers on probe rows without a warning.
Anything else (a step that selects columns by name, a custom step that reads a frame) keeps
the DataFrame path.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any, Iterator

import numpy as np

#: Estimators whose stored file is larger than this are not copied (the twin doubles memory).
MAX_TWIN_BYTES = 100 * 1024 * 1024
#: Rows of the probe that compares the twin with the original.
PROBE_ROWS = 16


def _estimators(root: Any) -> Iterator[Any]:
    """``root`` and every estimator inside it: its parameters' and its fitted attributes' (a
    pipeline's steps, an ensemble's fitted members), each once."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
            continue
        if not hasattr(item, "get_params") or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        stack.extend(v for v in vars(item).values() if isinstance(v, (list, tuple)) or hasattr(v, "get_params"))


def array_twin(estimator: Any, names: list[str], method: str, seed: int = 0) -> Any | None:
    """A copy of ``estimator`` that takes arrays of the ``names`` columns, or None when it may
    answer differently from the original given a DataFrame.

    Args:
        estimator: a fitted estimator with ``feature_names_in_``.
        names: the signature's features, all numeric, in the order requests' arrays carry them.
        method: the method the flavor calls (``predict`` or ``predict_proba``).
    """
    import pandas as pd

    if list(getattr(estimator, "feature_names_in_", [])) != list(names):
        return None
    twin = copy.deepcopy(estimator)
    for part in _estimators(twin):
        if "feature_names_in_" in vars(part):
            del part.feature_names_in_
    probe = np.random.default_rng(seed).normal(0.0, 1.0, (PROBE_ROWS, len(names)))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            expected = getattr(estimator, method)(pd.DataFrame(probe, columns=names))
            caught.clear()  # the original's own warnings do not count
            answered = getattr(twin, method)(probe)
    except Exception:  # noqa: BLE001 - a step that needs a frame: keep the frame path
        return None
    return None if caught or not same(expected, answered) else twin


def same(first: Any, second: Any) -> bool:
    """Whether two answers are the same: classes exactly, numbers to the last bits a memory
    layout changes in BLAS's sums (relative 1e-9; NaN equal to NaN)."""
    a, b = np.asarray(first), np.asarray(second)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        return bool(np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True))
    return bool(np.array_equal(a, b))
