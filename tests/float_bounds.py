"""Rounding-error bounds for comparing float32 results computed along
different paths.

Two float32 evaluations of the same formula round differently when their
paths differ: another summation order or blocking (a batch split across
replicas or not, a fused kernel), FMA or not, another tanh approximation.
Each is within a bound of the exact value of the formula on the same
float32 inputs, so the two are within twice that bound of each other.
:class:`Bounded` carries a float64 value and such a bound ``err`` through
the operations the tests' small models use, with the standard rules
(Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed.,
sections 2.2 and 3.1): a float32 dot product of length n, in any order,
with or without FMA, is within ``gamma(n) * sum|a_i b_i|`` of the exact
one, ``gamma(n) = n u / (1 - n u)`` with ``u = 2**-24``; every other
operation adds at most ``u`` relative; errors already in the inputs
propagate through the exact operation (tanh is 1-Lipschitz).
"""

from __future__ import annotations

import numpy as np

U = 2.0 ** -24          # float32 unit roundoff (round to nearest)
TINY = 2.0 ** -126      # smallest normal: flush-to-zero loses at most this
#: Accuracy of TensorFlow's float32 tanh (a rational approximation, eager,
#: traced or fused into a Dense layer): |error| <= TANH_REL * u * |tanh z|.
#: Measured at most 5.4 (near z = 7, where tanh is within 2e-6 of 1);
#: tests/test_float_bounds.py checks the bound against float64.
TANH_REL = 8
#: The same for float32 rsqrt (1 / sqrt): |error| <= RSQRT_REL * u * |r|
#: (measured at most 3.0).
RSQRT_REL = 6


def gamma(n: int) -> float:
    """Higham's gamma_n: the relative bound of n float32 roundings."""
    return n * U / (1 - n * U)


class Bounded:
    """A float64 ``value`` and a bound ``err`` on how far any float32
    evaluation of the same formula (on the same float32 inputs) lies from
    it."""

    def __init__(self, value, err=0.0):
        self.value = np.asarray(value, np.float64)
        self.err = np.broadcast_to(np.asarray(err, np.float64),
                                   self.value.shape).copy()

    @property
    def mag(self) -> np.ndarray:
        """A bound on the magnitude of any evaluation."""
        return np.abs(self.value) + self.err

    def __matmul__(self, other: "Bounded") -> "Bounded":
        other = _bounded(other)
        n = self.value.shape[-1]
        err = (np.abs(self.value) @ other.err + self.err @ other.mag
               + gamma(n) * (self.mag @ other.mag) + n * TINY)
        return Bounded(self.value @ other.value, err)

    def __add__(self, other) -> "Bounded":
        other = _bounded(other)
        value = self.value + other.value
        err = self.err + other.err
        return Bounded(value, err + U * (np.abs(value) + err) + TINY)

    def __sub__(self, other) -> "Bounded":
        other = _bounded(other)
        return self + Bounded(-other.value, other.err)

    def __mul__(self, other) -> "Bounded":
        other = _bounded(other)
        value = self.value * other.value
        err = np.abs(self.value) * other.err + self.err * other.mag
        return Bounded(value, err + U * (np.abs(value) + err) + TINY)

    def scaled(self, c: float, roundings: int = 1) -> "Bounded":
        """Times a constant reached through ``roundings`` float32 steps
        (a mean's 1/n, a loss's 2/(n d R), in whichever order)."""
        value = self.value * c
        err = abs(c) * self.err
        return Bounded(value, err + gamma(roundings) * (np.abs(value) + err)
                       + roundings * TINY)

    def transpose(self) -> "Bounded":
        return Bounded(self.value.T, self.err.T)

    def sum0(self) -> "Bounded":
        """The sum over the first axis (a bias gradient)."""
        ones = Bounded(np.ones((1, self.value.shape[0])))
        out = ones @ self
        return Bounded(out.value[0], out.err[0])

    def tanh(self) -> "Bounded":
        value = np.tanh(self.value)
        # 1-Lipschitz, then the kernel's own relative error
        err = self.err + TANH_REL * U * (np.abs(value) + self.err)
        return Bounded(value, np.minimum(err, 2.0))

    def rsqrt(self) -> "Bounded":
        """``1 / sqrt(v)`` for ``v`` bounded away from 0: its slope is at
        most ``(v - err)**-1.5 / 2`` on the interval, then the kernel's
        own relative error."""
        low = self.value - self.err
        if np.any(low <= 0):
            raise ValueError("rsqrt of a value whose bound reaches 0")
        value = 1 / np.sqrt(self.value)
        err = 0.5 * low ** -1.5 * self.err
        return Bounded(value, err + RSQRT_REL * U * (value + err))

    def abs(self) -> "Bounded":
        return Bounded(np.abs(self.value), self.err)  # exact, 1-Lipschitz

    def mean(self, axis=None) -> "Bounded":
        """A float32 mean: a sum of n terms in any order, then / n."""
        n = self.value.size if axis is None else self.value.shape[axis]
        total = Bounded(self.value.sum(axis), self.err.sum(axis))
        mags = self.mag.sum(axis)
        return Bounded(total.value / n,
                       (total.err + gamma(n) * mags) / n + TINY)


def _bounded(x) -> Bounded:
    return x if isinstance(x, Bounded) else Bounded(x)


def exact(a) -> Bounded:
    """A float32 input (weights, data): exact, no error."""
    return Bounded(np.asarray(a, np.float32))


def affine(x: Bounded, kernel, bias) -> Bounded:
    """``x @ kernel + bias`` as one dot product of length n + 1 (a kernel
    may start its sum from the bias, or fuse the add)."""
    ones = np.ones(x.value.shape[:-1] + (1,))
    xa = Bounded(np.concatenate([x.value, ones], -1),
                 np.concatenate([x.err, 0 * ones], -1))
    return xa @ exact(np.concatenate([kernel, np.reshape(bias, (1, -1))]))


def mlp_forward(weights, x):
    """``Dense(tanh) -> ... -> Dense`` (``weights`` as ``get_weights()``:
    kernel, bias per layer): the hidden activations and the output, each
    Bounded."""
    h, hidden = exact(x), []
    for i in range(0, len(weights), 2):
        h = affine(h, weights[i], weights[i + 1])
        if i + 2 < len(weights):
            h = h.tanh()
            hidden.append(h)
    return hidden, h


def mlp_mse_gradients(weights, x, y, replicas=1):
    """Bounded gradients (in ``weights`` order) of Keras' ``mse`` on one
    replica's batch ``x, y`` under a strategy of ``replicas``: the mean
    over batch and outputs, divided by ``replicas``, back-propagated as
    TensorFlow does (``dz = dh * (1 - h*h)``)."""
    hidden, out = mlp_forward(weights, x)
    y = exact(y)
    n, d = out.value.shape
    # d loss / d out = 2 (out - y) / (n d replicas): the square's 2x, the
    # two means and the replica scaling, at most 4 roundings in any order.
    upstream = (out - y).scaled(2.0 / (n * d * replicas), roundings=4)
    acts = [exact(x)] + hidden
    grads = []
    for i in range(len(weights) - 2, -1, -2):
        layer_in = acts[i // 2]
        grads[:0] = [layer_in.transpose() @ upstream, upstream.sum0()]
        if i:
            dh = upstream @ exact(weights[i]).transpose()
            h = acts[i // 2]
            upstream = dh * (Bounded(1.0) - h * h)
    return grads


def assert_within(actual, desired, bound, what=""):
    """``|actual - desired| <= bound`` elementwise, reporting the worst
    element and how much of the bound it used."""
    actual = np.asarray(actual, np.float64)
    desired = np.asarray(desired, np.float64)
    bound = np.broadcast_to(np.asarray(bound, np.float64), actual.shape)
    diff = np.abs(actual - desired)
    bad = ~(diff <= bound)
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, diff - bound, -1)),
                             diff.shape)
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {diff.size} elements differ by "
            f"more than the rounding bound; worst at {i}: {actual[i]!r} vs "
            f"{desired[i]!r}, difference {diff[i]:.3g} > bound "
            f"{bound[i]:.3g}")


def assert_same_mlp_output(a, b, weights, x, what):
    """``a`` and ``b``: two float32 evaluations of the MLP ``weights`` on
    ``x`` along different paths (a served SavedModel runs the batch on one
    device in one piece, ``predict`` splits it over the replicas: another
    matmul blocking). Each is within the forward bound of the exact
    output, so they are within twice it of each other."""
    _, out = mlp_forward(weights, x)
    assert_within(a, b, 2 * out.err, what)


def memory_bound(step_grads):
    """How far a float32 error-feedback memory (``m <- m + g`` each step,
    the sent entries cleared) can lie from the exact one after the steps
    whose Bounded gradients ``step_grads`` lists (one list per step, in
    variable order), whichever entries were sent: clearing only removes
    error and magnitude, so the sums over all steps bound it."""
    mags = errs = None
    for grads in step_grads:
        if errs is None:
            mags = [0.0] * len(grads)
            errs = [0.0] * len(grads)
        for i, g in enumerate(grads):
            mags[i] = mags[i] + g.mag
            errs[i] = errs[i] + g.err + U * (mags[i] + errs[i] + g.err)
    return errs


def mlp_memory_bounds(weights_per_step, x, y, replicas):
    """``memory_bound`` of every replica of an MLP trained with ``mse``:
    step t uses ``weights_per_step[t]`` and global batch t of ``x, y``
    (``len(x) / steps`` rows), split over the replicas in order."""
    steps = len(weights_per_step)
    batch = len(x) // steps
    per = batch // replicas
    bounds = []
    for r in range(replicas):
        rows = [slice(t * batch + r * per, t * batch + (r + 1) * per)
                for t in range(steps)]
        bounds.append(memory_bound(
            mlp_mse_gradients(w, x[s], y[s], replicas)
            for w, s in zip(weights_per_step, rows)))
    return bounds
