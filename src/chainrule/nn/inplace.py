"""The NumPy-only trick of the optimizers: an update writes a scaled gradient into scratch arrays
allocated once per parameter (``out=``), instead of a new array every step. Any other array module
(CuPy, array_api_strict) takes the plain spelling: the same values. benchmarks/README.md has the
A/B that chose it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.engine.backend import namespace

Array = Any  # a NumPy array, or any array API array


def scaled(a: float | Array, x: Array, out: Array) -> Array:
    """a * x (x: any shape; a: a number or an array of x's shape), written into ``out`` (x's
    shape and dtype) for NumPy arrays."""
    return np.multiply(x, a, out=out) if type(x) is np.ndarray else a * x


def sqrt(x: Array, out: Array) -> Array:
    """sqrt(x) elementwise, written into ``out`` for NumPy arrays."""
    return np.sqrt(x, out=out) if type(x) is np.ndarray else namespace(x).sqrt(x)


def divided(a: Array, b: Array) -> Array:
    """a / b elementwise, written into ``b`` for NumPy arrays."""
    return np.divide(a, b, out=b) if type(b) is np.ndarray else a / b
