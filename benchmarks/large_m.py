"""Large M on paper: the time model's predicted step time for M = 16 ... 256
workers at 1, 10 and 25 Gbit/s, for a 10M- and a 100M-parameter model
(EXTRAPOLATED: nothing here was run at these M; see docs/NETWORK.md).

    .venv/bin/python benchmarks/large_m.py --profile timemodel/profile_m2_loopback.json \\
        --png docs/large_m.png

Collectives come from :class:`tf_sparsesign.policy.Link` (the bandwidth,
and the per-message latency measured on loopback: the 2-worker profile's
all-gather ``a``); compute from the profile's parts (measured with one
core per worker), scaled to the sizes by
:func:`tf_sparsesign.policy.work_units`; forward+backward scaled from the
profile's model in proportion to the parameters (the MLP at batch 32). Prints
per (link, model) the M from which the best sharded option is faster than
the best all-gather (the crossover), and draws the PNG.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tf_sparsesign import policy  # noqa: E402

MS = (16, 24, 32, 48, 64, 96, 128, 192, 256)
LINKS = (1e9, 10e9, 25e9)
MODELS = (10_000_000, 100_000_000)
OPTIONS = ("dense", "allgather/int32", "allgather/rice", "sharded/int32",
           "sharded/rice", "sharded-topk/rice")
STYLE = {"dense": ("k", ":"), "allgather/int32": ("tab:blue", "--"),
         "allgather/rice": ("tab:blue", "-"),
         "sharded/int32": ("tab:red", "--"), "sharded/rice": ("tab:red", "-"),
         "sharded-topk/rice": ("tab:gray", "-.")}


def curves(profile, n, bandwidth, density, latency):
    """``{option: [seconds at each M]}``."""
    link = policy.Link(bandwidth=bandwidth, latency=latency)
    fb = (profile.forward_backward * n / sum(profile.sizes)
          if profile is not None and profile.forward_backward else 0.0)
    out = {o: [] for o in OPTIONS}
    for m in MS:
        k = policy.allocate([n], density)[0]
        for p in policy.predict(policy.Workload(n, k, m, fb), OPTIONS,
                                profile, link):
            out[p.option.name].append(p.seconds)
    return out


def crossover(times) -> int | None:
    """The first M where the best sharded (exact) is faster than the best
    all-gather."""
    for i, m in enumerate(MS):
        shard = min(times["sharded/int32"][i], times["sharded/rice"][i])
        gather = min(times["allgather/int32"][i], times["allgather/rice"][i])
        if shard < gather:
            return m
    return None


def draw(results, png: Path, density: float, latency: float) -> None:
    """One panel per (model, link), step time against M, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(MODELS), len(LINKS), figsize=(15, 8.5),
                             sharex=True)
    for (r, n), (c, bw) in [((r, n), (c, bw)) for r, n in enumerate(MODELS)
                            for c, bw in enumerate(LINKS)]:
        ax, times = axes[r][c], results[n, bw]
        for option, ys in times.items():
            color, ls = STYLE[option]
            ax.plot(MS, ys, color=color, ls=ls, marker=".", label=option)
        m = crossover(times)
        if m is not None:
            ax.axvline(m, color="tab:green", lw=1)
            ax.annotate(f"sharded faster\nfrom M = {m}", (m, 0.98),
                        xycoords=("data", "axes fraction"), va="top",
                        ha="left", fontsize=9, color="tab:green",
                        xytext=(4, 0), textcoords="offset points")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(MS[::2], [str(v) for v in MS[::2]])
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(f"{n / 1e6:g}M parameters, {bw / 1e9:g} Gbit/s",
                     fontsize=11)
        if c == 0:
            ax.set_ylabel("predicted step time (s)")
        if r == len(MODELS) - 1:
            ax.set_xlabel("workers M")
    axes[0][0].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"EXTRAPOLATED by the time model (not measured): density "
                 f"{density:g}, {latency * 1e3:.2f} ms per message, compute "
                 f"of this machine (1 core/worker)", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)


def main(argv=None) -> int:
    """Predicts, prints the crossovers, draws."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", type=Path, default=None,
                    help="compute parts and forward+backward from here "
                         "(default: the documented defaults)")
    ap.add_argument("--latency", type=float, default=None,
                    help="seconds per message (default: the profile's "
                         "all-gather a per round, else the default)")
    ap.add_argument("--density", type=float, default=0.01)
    ap.add_argument("--png", type=Path, default=Path("docs/large_m.png"))
    args = ap.parse_args(argv)
    profile = policy.load_profile(args.profile) if args.profile else None
    latency = args.latency
    if latency is None:
        latency = (profile.collectives["all_gather"].a /
                   max(profile.num_replicas - 1, 1)
                   if profile else policy.Link().latency)
    results = {(n, bw): curves(profile, n, bw, args.density, latency)
               for n in MODELS for bw in LINKS}
    print(f"| model | link | crossover M | at M = 256: best all-gather s | "
          f"best sharded exact s |\n|---|---|---|---|---|")
    for (n, bw), times in results.items():
        gather = min(times["allgather/int32"][-1],
                     times["allgather/rice"][-1])
        shard = min(times["sharded/int32"][-1], times["sharded/rice"][-1])
        print(f"| {n / 1e6:g}M | {bw / 1e9:g} Gbit/s | "
              f"{crossover(times) or '> 256'} | {gather:.3f} | "
              f"{shard:.3f} |")
    draw(results, args.png, args.density, latency)
    print(f"plot: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
