"""K per tensor: density, a total k, or "auto" (no TensorFlow here)."""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Sequence, Union

from .bits import codec_words, packed_sign_words

Density = Union[float, str]

#: The ``density="auto"`` target for up to this many replicas.
AUTO_BASE_DENSITY = 1.0 / 96.0
AUTO_BASE_REPLICAS = 8
AUTO_MIN_DENSITY = 1e-4


def auto_density(num_replicas: int) -> float:
    """The density ``"auto"`` picks for ``num_replicas`` voters.

    1/96 (about 1%) sends a third of a 1-bit signSGD-MV's bits (a fifth
    of this library's packed signSGD-MV) with int32 codes;
    beyond 8 replicas it shrinks as 8/M so that the expected number of votes
    per coordinate (M * density) stays about 1/12, floored at 1e-4.
    """
    m = max(1, int(num_replicas))
    scale = min(1.0, AUTO_BASE_REPLICAS / m)
    return max(AUTO_MIN_DENSITY, AUTO_BASE_DENSITY * scale)


def validate(density: Density | None, k: int | None) -> None:
    """Raises ValueError for a setting that can never be valid."""
    if k is not None:
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise ValueError(f"k must be a positive int, got {k!r}")
        if k <= 0:
            raise ValueError(f"k must be a positive int, got {k}")
        return
    if density == "auto":
        return
    if isinstance(density, bool) or not isinstance(density, numbers.Real):
        raise ValueError(f"density must be a float in (0, 1] or 'auto', got "
                         f"{density!r}")
    if not 0.0 < float(density) <= 1.0 or math.isnan(float(density)):
        raise ValueError(f"density must be in (0, 1], got {density}")


def allocate(sizes: Sequence[int], density: Density | None = 0.01,
             k: int | None = None, num_replicas: int = 1) -> list[int]:
    """K per tensor.

    Args:
      sizes: element counts ``n_l`` of the tensors, in order.
      density: ``K_l = ceil(density * n_l)``, or ``"auto"`` (see
        :func:`auto_density`). Ignored when ``k`` is given.
      k: a total spread over tensors in proportion to size (largest
        remainders; every tensor at most its size).
      num_replicas: number of voters M, used by ``"auto"``.

    Returns:
      list of ints, ``0 <= K_l <= n_l``.

    Example:

    >>> allocate([1000, 10], density=0.01)
    [10, 1]
    >>> allocate([1000, 10], k=101)
    [100, 1]
    """
    validate(density, k)
    sizes = [int(s) for s in sizes]
    total = sum(sizes)
    if k is not None:
        if k > total:
            raise ValueError(f"k = {k} is larger than the model: the "
                             f"trainable tensors have {total} elements")
        exact = [k * s / total for s in sizes]
        ks = [math.floor(e) for e in exact]
        left = k - sum(ks)
        order = sorted(range(len(sizes)), key=lambda i: (ks[i] - exact[i], i))
        for i in order:
            if left == 0:
                break
            if ks[i] < sizes[i]:
                ks[i] += 1
                left -= 1
        return ks
    d = auto_density(num_replicas) if density == "auto" else float(density)
    return [min(s, math.ceil(d * s)) for s in sizes]


def sends_everything(sizes: Sequence[int], ks: Sequence[int]) -> bool:
    """True when every tensor sends all its entries (density 1): then
    ``method="sign_vote"`` is signSGD-MV, and runs without selection as
    packed signs (:func:`tf_sparsesign.aggregation.registry.choose`)."""
    return [int(k) for k in ks] == [int(s) for s in sizes]


def warn_if_wasteful(sizes: Sequence[int], ks: Sequence[int],
                     wire: str = "int32", with_values: bool = False) -> None:
    """Warns when the messages cost more bits than this library's
    signSGD-MV (``density=1``, packed signs) would."""
    n, total_k = sum(sizes), sum(ks)
    mine = codec_words(wire, n, total_k, with_values)
    sign = packed_sign_words(n)
    if mine > sign:
        warnings.warn(
            f"tf_sparsesign: K = {total_k} of N = {n} (density "
            f"{total_k / max(n, 1):.2%}) sends {32 * mine} bits per step "
            f"with wire={wire!r}, more than signSGD-MV's {32 * sign} "
            "(density=1.0: every coordinate packed in 1.6 bits). int32 codes"
            " win below ~5% density, Rice codes below ~45%; choose a "
            "smaller density or k.", UserWarning, stacklevel=3)
