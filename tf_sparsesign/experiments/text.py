"""Text for the language-model runs: an offline corpus, its split, windows.

Corpus ``pydoc-topics``: CPython's own documentation topics,
``pydoc_data.topics.topics`` (the text ``help("assert")`` etc. print: the
language reference's chapters on statements, operators, types and special
methods, English with code). It ships inside every CPython 3 standard
library (no download, no extra package), so every machine that runs this
package has it. The texts are joined in sorted topic order and encoded as
UTF-8: 466,117 bytes under CPython 3.11.7 (79 topics, 107 distinct byte
values). The documentation is regenerated for each CPython release, so the
bytes differ slightly between Python versions: :attr:`TextData.digest`
(SHA-256 of the bytes, first 12 hex digits) names the exact text
(``37d06970fc92`` under 3.11.7), and the sweep's report prints it.

Tokens are bytes (vocabulary 256). Split: the last 10% of the bytes are held
out (46,612 under 3.11.7), the first 90% (419,505) are the training text.
Held-out windows: the held-out bytes cut into consecutive, non-overlapping
windows of ``context`` inputs, each with the next ``context`` bytes as
targets (728 windows of 64 under 3.11.7); an evaluation uses the first
``eval_windows`` of them, always the same ones. Held-out bits per byte =
the mean cross-entropy over those targets / ln 2.

Training windows start at any offset of the training text; per worker,
per step, ``batch`` starts come from :func:`batch_starts` (worker splits
``iid``: every worker samples from the whole text; ``noniid``: worker ``w``
holds the ``w``-th contiguous ``1/M`` of it, i.e. other topics). The data
order depends only on the seed, so every method sees the same batches at
a given seed.

Example:

>>> data = load_text("pydoc-topics", context=64)
>>> total = len(data.train) + len(data.heldout)
>>> data.x_test.shape[1], data.vocab, len(data.heldout) == round(0.1 * total)
(64, 256, True)
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

CORPORA = ("pydoc-topics",)
#: Fraction of the corpus held out (its last bytes).
HELDOUT_FRACTION = 0.1


@dataclasses.dataclass
class TextData:
    """A byte corpus split for language modelling.

    ``train`` / ``heldout``: uint8 token arrays; ``x_test`` / ``y_test``:
    ``[windows, context]`` int32 held-out inputs and next-byte targets."""

    name: str
    train: np.ndarray
    heldout: np.ndarray
    context: int
    x_test: np.ndarray
    y_test: np.ndarray
    digest: str
    vocab: int = 256


def corpus_bytes(name: str) -> bytes:
    """The corpus ``name`` (one of :data:`CORPORA`) as bytes."""
    if name != "pydoc-topics":
        raise ValueError(f"unknown corpus {name!r}; expected one of "
                         f"{CORPORA}")
    from pydoc_data.topics import topics

    return "".join(topics[k] for k in sorted(topics)).encode("utf-8")


def load_text(name: str, context: int = 64,
              eval_windows: int | None = None) -> TextData:
    """Loads corpus ``name``, holds out its last :data:`HELDOUT_FRACTION`,
    and cuts the held-out windows (all, or the first ``eval_windows``)."""
    if context <= 0:
        raise ValueError(f"context must be positive, got {context}")
    raw = corpus_bytes(name)
    tokens = np.frombuffer(raw, np.uint8)
    cut = len(tokens) - int(round(HELDOUT_FRACTION * len(tokens)))
    train, heldout = tokens[:cut], tokens[cut:]
    n = (len(heldout) - 1) // context
    if eval_windows is not None:
        if not 0 < eval_windows <= n:
            raise ValueError(f"eval_windows must be in [1, {n}] for context "
                             f"{context}, got {eval_windows}")
        n = eval_windows
    x = heldout[:n * context].reshape(n, context).astype(np.int32)
    y = heldout[1:n * context + 1].reshape(n, context).astype(np.int32)
    return TextData(name, train, heldout, context, x, y,
                    hashlib.sha256(raw).hexdigest()[:12])


def batch_starts(train_len: int, context: int, workers: int, steps: int,
                 batch: int, split: str = "iid", seed: int = 0
                 ) -> np.ndarray:
    """``[steps, workers, batch]`` int32 window starts into the training
    text (a window is ``context + 1`` bytes: inputs and shifted targets).

    ``iid``: uniform over the whole text; ``noniid``: worker ``w`` draws
    from its contiguous ``w``-th share only.

    >>> s = batch_starts(1000, 8, 2, 3, 4, "noniid", seed=1)
    >>> s.shape, bool((s[:, 0] < 496).all()), bool((s[:, 1] >= 496).all())
    ((3, 2, 4), True, True)
    """
    if split not in ("iid", "noniid"):
        raise ValueError(f"split must be 'iid' or 'noniid', got {split!r}")
    last = train_len - context - 1          # the last valid start
    if last < workers:
        raise ValueError(f"a training text of {train_len} bytes has too "
                         f"few windows of {context + 1} for {workers} "
                         "workers")
    rng = np.random.default_rng(seed)
    if split == "iid":
        return rng.integers(0, last + 1, (steps, workers, batch),
                            dtype=np.int64).astype(np.int32)
    edges = np.linspace(0, last + 1, workers + 1).astype(np.int64)
    out = np.empty((steps, workers, batch), np.int32)
    for w in range(workers):
        out[:, w] = rng.integers(edges[w], edges[w + 1], (steps, batch))
    return out


def windows(tokens, starts, context: int):
    """TF: the ``(inputs, targets)`` int32 windows of ``tokens`` (a 1-D
    tensor) at ``starts`` (any shape ``S``): two ``S + [context]``
    tensors."""
    import tensorflow as tf

    idx = tf.expand_dims(starts, -1) + tf.range(context + 1)
    w = tf.cast(tf.gather(tokens, idx), tf.int32)
    return w[..., :-1], w[..., 1:]


def heldout_metrics(model, x, y, chunk: int = 256):
    """TF: ``(next-byte accuracy, mean cross-entropy in nats)`` of ``model``
    over windows ``x`` / targets ``y``, ``chunk`` windows at a time. Bits
    per byte = the cross-entropy / ln 2."""
    import tensorflow as tf

    loss, hits = tf.constant(0.0), tf.constant(0.0)
    for i in tf.range(0, tf.shape(x)[0], chunk):
        logits = model(x[i:i + chunk], training=False)
        yc = y[i:i + chunk]
        loss += tf.reduce_sum(
            tf.nn.sparse_softmax_cross_entropy_with_logits(yc, logits))
        hits += tf.reduce_sum(tf.cast(tf.equal(
            tf.argmax(logits, -1, output_type=tf.int32), yc), tf.float32))
    count = tf.cast(tf.size(y), tf.float32)
    return hits / count, loss / count
