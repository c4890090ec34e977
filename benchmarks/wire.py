"""Rice wire format: size against the entropy bound, and speed (not a test).

    python benchmarks/wire.py
    python benchmarks/wire.py --sizes 1e6 1e7 --densities 0.01 0.001

For each N and density the message is the top-K codes of a random normal
gradient (positions uniform, signs random). Size: bits per nonzero of the
whole Rice message (header included) against the floor log2 C(N, K) + K
(policy.entropy_bound_bits), also when padded to the static length
rice_max_words(N, K), and against int32 codes and dense fp32. Speed:
Rice encode, decode, and decode of M messages padded to one [M, W_max]
tensor (and the same M decoded one call each), against the int32 path,
which costs nothing but a copy (timed as ``codes + 0``, the same eager op
overhead). Medians, measured side by side in one run; markdown tables.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_sparsesign import ops, policy  # noqa: E402
from tf_sparsesign.timing import median_seconds  # noqa: E402


def top_k_codes(n: int, k: int, seed: int) -> tf.Tensor:
    x = np.random.default_rng(seed).standard_normal(n, dtype=np.float32)
    return ops.sparse_sign_encode(tf.constant(x), k)


def measure(n: int, density: float, workers: int, repeat: int) -> dict:
    k = max(1, round(density * n))
    codes = top_k_codes(n, k, seed=0)
    words = ops.rice_encode(codes, n)
    assert np.array_equal(ops.rice_decode(words, n, k).numpy(), codes)
    msgs = [ops.rice_encode(top_k_codes(n, k, seed=s), n)
            for s in range(workers)]
    w_max = max(int(m.shape[0]) for m in msgs)
    rows = tf.stack([tf.pad(m, [[0, w_max - int(m.shape[0])]]) for m in msgs])
    bits = 32 * int(words.shape[0])
    floor = policy.entropy_bound_bits(n, k)
    return {
        "n": n, "density": density, "k": k, "words": int(words.shape[0]),
        "bits_per_nz": bits / k, "floor_per_nz": floor / k,
        "vs_floor": bits / floor, "vs_int32": 32 * k / bits,
        "vs_dense": 32 * n / bits,
        "max_vs_floor": 32 * policy.rice_max_words(n, k) / floor,
        "copy": median_seconds(lambda: (codes + 0).numpy(), repeat),
        "encode": median_seconds(lambda: ops.rice_encode(codes, n).numpy(),
                              repeat),
        "decode": median_seconds(lambda: ops.rice_decode(words, n, k).numpy(),
                              repeat),
        "decode_m": median_seconds(
            lambda: ops.rice_decode(rows, n, k).numpy(), repeat),
        "decode_each": median_seconds(
            lambda: [ops.rice_decode(m, n, k).numpy() for m in msgs], repeat),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7])
    ap.add_argument("--densities", type=float, nargs="+",
                    default=[0.01, 0.001])
    ap.add_argument("--workers", type=int, default=8,
                    help="messages in the batched decode")
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    if not ops.is_compiled():
        print("WARNING: compiled library unavailable; timing the reference")
    rows = [measure(int(n), d, args.workers, args.repeat)
            for n in args.sizes for d in args.densities]
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs\n")
    print("| N | density | K | words | bits/nonzero | bound bits/nonzero | "
          "× bound | × bound padded to rice_max_words | "
          "× fewer than int32 | "
          "× fewer than dense fp32 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n']:.0e} | {r['density']:.1%} | {r['k']} | "
              f"{r['words']} | {r['bits_per_nz']:.3f} | "
              f"{r['floor_per_nz']:.3f} | {r['vs_floor']:.4f} | "
              f"{r['max_vs_floor']:.4f} | "
              f"{r['vs_int32']:.2f} | {r['vs_dense']:.0f} |")
    m = args.workers
    print(f"\n| N | density | K | int32 copy ms | encode ms | decode ms | "
          f"encode+decode ms | ns/entry (enc+dec) | decode [{m}, W_max] ms | "
          f"{m} single decodes ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        both = r["encode"] + r["decode"]
        print(f"| {r['n']:.0e} | {r['density']:.1%} | {r['k']} | "
              f"{r['copy'] * 1e3:.3f} | {r['encode'] * 1e3:.3f} | "
              f"{r['decode'] * 1e3:.3f} | {both * 1e3:.3f} | "
              f"{both / r['k'] * 1e9:.1f} | {r['decode_m'] * 1e3:.3f} | "
              f"{r['decode_each'] * 1e3:.3f} |")


if __name__ == "__main__":
    main()
