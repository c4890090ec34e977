"""The PyTorch baseline for the GPU encoder, timed on the same GPU.

Builds the same kind of message the way one would in PyTorch:
``torch.topk(x.abs(), k)`` (unsorted), sort the indices, gather the signs,
pack ``(index << 1) | sign``. (Its tie and zero handling differ from wire
format v1; it is a timing baseline, not a reference.) With ``--ours``
(the harness's bench.csv) it also prints the ratio table: our encode vs
torch.topk, and our encode vs a device-to-device copy of the same bytes.

    python benchmarks/gpu/torch_topk.py --max-n 1e9 --ours out/bench.csv --out out
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
from pathlib import Path

import torch

SIZES = (10**6, 10**7, 10**8, 10**9)
DENSITIES = (0.01, 0.001)
GOAL_N, GOAL_DENSITY = 10**8, 0.01
GOAL_COPY_RATIO, GOAL_SPEEDUP = 0.5, 5.0


def time_ms(fn, reps: int, warmup: int = 3) -> tuple[float, float, float]:
    """Median, p10, p90 of fn() in milliseconds, timed with CUDA events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    pick = lambda q: times[int(q * (len(times) - 1))]  # noqa: E731
    return statistics.median(times), pick(0.1), pick(0.9)


def topk_codes(x: torch.Tensor, k: int) -> torch.Tensor:
    _, idx = torch.topk(x.abs(), k, sorted=False)
    idx, _ = torch.sort(idx)
    sign = torch.signbit(x[idx]).to(torch.int32)
    return (idx.to(torch.int32) << 1) | sign


def bench_torch(max_n: int, reps: int) -> list[dict]:
    rows = []
    for n in SIZES:
        if n > max_n:
            continue
        free, _ = torch.cuda.mem_get_info()
        if 4 * n * 4 + (512 << 20) > free:  # x, |x|, copy target, topk temps
            print(f"skip torch N={n}: {free >> 20} MiB free")
            continue
        gen = torch.Generator(device="cuda").manual_seed(n)
        x = torch.randn(n, device="cuda", generator=gen)
        dst = torch.empty_like(x)
        r = max(3, reps // 4) if n >= 10**9 else reps
        copy = time_ms(lambda: dst.copy_(x), r)
        for d in DENSITIES:
            k = math.ceil(d * n)
            med, p10, p90 = time_ms(lambda: topk_codes(x, k), r)
            rows.append({"n": n, "density": d, "k": k, "torch_ms": med,
                         "torch_p10_ms": p10, "torch_p90_ms": p90,
                         "torch_copy_ms": copy[0]})
        del x, dst
        torch.cuda.empty_cache()
    return rows


def read_ours(path: Path) -> dict:
    """float32 encode rows of the harness CSV, keyed by (n, density)."""
    ours = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            if row["op"] == "encode" and row["dtype"] == "float32" \
                    and row["variant"] == "":
                ours[(int(row["n"]), round(float(row["density"]), 6))] = row
    return ours


def ratio_table(torch_rows: list[dict], ours: dict) -> str:
    lines = [
        "| N | density | ours ms | torch.topk ms | speedup vs torch | "
        "ours GB/s | copy GB/s | ours / copy |",
        "|---|---|---|---|---|---|---|---|"]
    verdict = "goal row (N=1e8, 1%) not measured"
    for t in torch_rows:
        o = ours.get((t["n"], round(t["density"], 6)))
        if o is None:
            continue
        ours_ms, copy_ms = float(o["median_ms"]), float(o["copy_ms"])
        speedup = t["torch_ms"] / ours_ms
        gbs = 4 * t["n"] / (ours_ms * 1e6)
        copy_gbs = 4 * t["n"] / (copy_ms * 1e6)
        vs_copy = copy_ms / ours_ms
        lines.append(f"| {t['n']:.0e} | {t['density']:.1%} | {ours_ms:.4f} | "
                     f"{t['torch_ms']:.4f} | {speedup:.1f}x | {gbs:.0f} | "
                     f"{copy_gbs:.0f} | {vs_copy:.2f} |")
        if t["n"] == GOAL_N and abs(t["density"] - GOAL_DENSITY) < 1e-9:
            met = vs_copy >= GOAL_COPY_RATIO and speedup >= GOAL_SPEEDUP
            verdict = (f"goal at N=1e8, 1%: ours/copy = {vs_copy:.2f} "
                       f"(need >= {GOAL_COPY_RATIO}), speedup vs torch.topk = "
                       f"{speedup:.1f}x (need >= {GOAL_SPEEDUP}x): "
                       f"{'MET' if met else 'NOT MET'}")
    return "\n".join(lines) + "\n\n" + verdict + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-n", type=float, default=1e8)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--ours", type=Path, help="harness bench.csv")
    ap.add_argument("--out", type=Path, default=Path("."))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}")
    rows = bench_torch(int(args.max_n), args.reps)
    with open(args.out / "torch_topk.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["n"])
        w.writeheader()
        w.writerows(rows)
    for r in rows:
        print(f"torch.topk codes N={r['n']:.0e} density={r['density']:.1%}: "
              f"{r['torch_ms']:.4f} ms (copy {r['torch_copy_ms']:.4f} ms)")
    if args.ours and args.ours.is_file():
        table = ("## Ratios (same GPU, same run)\n\n"
                 f"GPU: {torch.cuda.get_device_name()}; float32 input; "
                 "copy = device-to-device copy of the same 4N bytes, timed "
                 "by the harness; GB/s counts one read of the input.\n\n"
                 + ratio_table(rows, read_ours(args.ours)))
        (args.out / "ratios.md").write_text(table)
        print("\n" + table)


if __name__ == "__main__":
    main()
