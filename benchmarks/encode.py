"""Encode and vote speed, measured side by side in one run (not a test).

    python benchmarks/encode.py            # N in 1e6, 1e7, 1e8
    python benchmarks/encode.py --sizes 1e6 1e7 --repeat 5

For each N and density it times our compiled ``sparse_sign_encode`` against
``tf.math.top_k(tf.abs(x), k)`` plus the sign gather, ``np.argpartition``
plus the signs, and one streaming read (``np.sum``); then ``majority_vote``
of M=8 rows against writing an N-element output; and the fused
error-feedback encode against the in-place add alone. Prints medians and ratios
as a markdown table. Times drift on a shared machine; the ratios are the
point, since every column is measured in the same run.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_sparsesign import ops  # noqa: E402
from tf_sparsesign.timing import (interleaved_medians,  # noqa: E402
                                  median_seconds)


def ms(t: float) -> str:
    return f"{t * 1e3:.2f}"


def encode_rows(n: int, density: float, repeat: int) -> dict:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n, dtype=np.float32)
    xt = tf.constant(x)
    k = max(1, int(round(density * n)))

    def ours():
        ops.sparse_sign_encode(xt, k).numpy()

    def topk():
        _, idx = tf.math.top_k(tf.abs(xt), k)
        idx = tf.sort(idx)
        (idx * 2 + tf.cast(tf.gather(xt, idx) < 0, tf.int32)).numpy()

    def argpart():
        idx = np.sort(np.argpartition(np.abs(x), n - k)[n - k:])
        (idx << 1) | (x[idx] < 0)

    def stream():
        np.sum(x)

    slow = max(1, repeat // 3) if n >= 50_000_000 else repeat
    row = {"N": n, "k": k,
           "ours": median_seconds(ours, repeat),
           "top_k": median_seconds(topk, slow),
           "argpartition": median_seconds(argpart, slow),
           "np.sum": median_seconds(stream, repeat)}
    return row


def fused_row(n: int, density: float, repeat: int) -> dict:
    """The fused error-feedback encode (memory += g; top-K; clear, in place)
    against the in-place add ``memory += g`` alone, and against the three
    unfused steps it replaces."""
    rng = np.random.default_rng(2)
    g = tf.constant(rng.standard_normal(n, dtype=np.float32))
    memory = tf.Variable(rng.standard_normal(n, dtype=np.float32))
    k = max(1, int(round(density * n)))

    @tf.function
    def add():
        memory.assign_add(g, read_value=False)

    @tf.function
    def fused():
        return ops.accumulate_encode(memory, g, k)

    @tf.function
    def unfused():
        codes, residual = ops.sparse_sign_encode(memory + g, k,
                                                 return_residual=True)
        memory.assign(residual)
        return codes

    return {"N": n, "k": k, **interleaved_medians(
        {"add": add, "fused": fused, "unfused": unfused}, repeat)}


def vote_row(n: int, m: int, k: int, repeat: int) -> dict:
    rng = np.random.default_rng(1)
    rows = [np.sort(rng.choice(n, k, replace=False)) for _ in range(m)]
    codes = tf.constant(np.array([(r << 1) | rng.integers(0, 2, k)
                                  for r in rows], np.int32))
    buf = np.empty(n, np.float32)
    return {"N": n, "M": m, "k": k,
            "vote": median_seconds(lambda: ops.majority_vote(codes, n).numpy(),
                                repeat),
            # np.zeros alone only maps pages lazily; writing the zeros is
            # the honest "one write of N floats" (fresh pages, like an op's
            # freshly allocated output). fill(0) reuses a warm buffer.
            "np.zeros": median_seconds(lambda: np.zeros(n, np.float32), repeat),
            "zeros+write": median_seconds(
                lambda: np.zeros(n, np.float32).fill(0.0), repeat),
            "fill(0)": median_seconds(lambda: buf.fill(0.0), repeat)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=float,
                    default=[1e6, 1e7, 1e8])
    ap.add_argument("--densities", nargs="+", type=float,
                    default=[0.01, 0.001])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    assert ops.is_compiled(), "benchmark needs the compiled op library"
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs\n")
    print("| N | density | k | ours ms | top_k ms | argpartition ms | "
          "np.sum ms | top_k / ours | ours / np.sum |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in map(int, args.sizes):
        for d in args.densities:
            r = encode_rows(n, d, args.repeat)
            print(f"| {n:.0e} | {d:.1%} | {r['k']} | {ms(r['ours'])} | "
                  f"{ms(r['top_k'])} | {ms(r['argpartition'])} | "
                  f"{ms(r['np.sum'])} | {r['top_k'] / r['ours']:.1f}x | "
                  f"{r['ours'] / r['np.sum']:.2f}x |", flush=True)
    print("\n| N | M | k | vote ms | np.zeros(N) ms (lazy) | "
          "np.zeros(N) written ms | warm fill(0) ms | vote / written zeros | "
          "vote / warm fill |")
    print("|---|---|---|---|---|---|---|---|---|")
    r = vote_row(10_000_000, 8, 100_000, args.repeat)
    print(f"| {r['N']:.0e} | {r['M']} | {r['k']} | {ms(r['vote'])} | "
          f"{ms(r['np.zeros'])} | {ms(r['zeros+write'])} | "
          f"{ms(r['fill(0)'])} | {r['vote'] / r['zeros+write']:.2f}x | "
          f"{r['vote'] / r['fill(0)']:.2f}x |")
    print("\n| N | k | memory += g ms | fused EF encode ms | unfused ms | "
          "fused / add | unfused / add |")
    print("|---|---|---|---|---|---|---|")
    for n in (1_000_000, 10_000_000):
        r = fused_row(n, 0.01, args.repeat)
        print(f"| {n:.0e} | {r['k']} | {ms(r['add'])} | {ms(r['fused'])} | "
              f"{ms(r['unfused'])} | {r['fused'] / r['add']:.2f}x | "
              f"{r['unfused'] / r['add']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
