"""Argument checks shared by the op wrappers (static Python values only)."""

from __future__ import annotations

import numbers

import tensorflow as tf

ON_INVALID = ("raise", "drop")


def as_int(value, what: str, low: int | None = None,
           high: int | None = None) -> int:
    """``value`` as a Python int in ``[low, high]``, else a clear error.

    TypeError for a non-int (tensors too: the output shapes are static),
    ValueError for an int out of range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be a Python int (the output shape is "
                        f"static), got {type(value).__name__}: {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and
                                             value > high):
        bound = (f"[{low}, {high}]" if high is not None else f">= {low}")
        raise ValueError(f"{what} must be in {bound}, got {value}")
    return value


def check_on_invalid(on_invalid: str, what: str) -> str:
    if on_invalid not in ON_INVALID:
        raise ValueError(f"{what}: on_invalid must be 'raise' or 'drop', got "
                         f"{on_invalid!r}")
    return on_invalid


def int32_tensor(value, what: str, shapes: dict) -> tf.Tensor:
    """``value`` as an int32 tensor whose rank is a key of ``shapes``
    (``{rank: "[M, k]"}``, the text used in the error)."""
    t = tf.convert_to_tensor(value)
    if t.dtype != tf.int32:
        raise TypeError(f"{what} must be int32, got {t.dtype.name}")
    if t.shape.rank is not None and t.shape.rank not in shapes:
        wanted = " or ".join(shapes.values())
        raise ValueError(f"{what} must have shape {wanted}, got shape "
                         f"{t.shape}")
    return t
