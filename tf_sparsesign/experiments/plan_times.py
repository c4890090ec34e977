"""``tf-sparsesign plan``'s time section: the time model's predicted step
time of every exchange option (:func:`tf_sparsesign.policy.predict`), from
a calibration profile (``--profile``) or from documented defaults (the
``--bandwidth`` given, the default per-message latency, the default
compute rates, ``--step-compute`` as forward+backward), and which it uses.
No TensorFlow is imported: the installed version is read from the package
metadata.

Example:

>>> text = format_times(1_000_000, [1_000_000], 8, [0.01], None,
...                     bandwidth_bps=1e9, step_compute_s=0.05)
>>> "no profile" in text and "allgather/rice" in text
True
"""

from __future__ import annotations

from importlib import metadata

from .. import policy

#: Distributions that provide TensorFlow, in the order they are asked.
TF_DISTRIBUTIONS = ("tensorflow-cpu", "tensorflow", "tensorflow-gpu",
                    "tf-nightly", "tensorflow-macos")
#: Options shown: dense and every exchange that gives the same update.
SHOWN = ("dense", "allgather/int32", "allgather/rice", "allgather/packed",
         "sharded/int32", "sharded/rice")


def installed_tf_version() -> str | None:
    """The installed TensorFlow's version (None when there is none)."""
    for name in TF_DISTRIBUTIONS:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def load_checked(path, workers: int) -> policy.Profile:
    """The profile at ``path``; :class:`~tf_sparsesign.policy.
    ProfileMismatch` when it was taken with another M or TensorFlow."""
    profile = policy.load_profile(path)
    profile.check(num_replicas=workers, tf_version=installed_tf_version())
    return profile


def aligned(table) -> list:
    """Rows of text cells as lines in aligned columns, a rule under the
    first (the header)."""
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = []
    for j, row in enumerate(table):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths))
                     .rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def format_times(n: int, sizes, workers: int, densities,
                 profile: policy.Profile | None, bandwidth_bps: float,
                 step_compute_s: float | None = None) -> str:
    """The time table: per density, every option of :data:`SHOWN`, its
    predicted step time and where it goes, fastest same-update option
    marked."""
    link = None if profile is not None else policy.Link(bandwidth_bps)
    fb = step_compute_s if (profile is None or step_compute_s) else None
    if profile is not None:
        source = (f"profile taken {profile.taken} (M = "
                  f"{profile.num_replicas}, TensorFlow {profile.tf_version},"
                  f" {len(set(profile.hosts))} host(s))")
    else:
        source = (f"no profile: documented defaults (link "
                  f"{bandwidth_bps / 1e9:g} Gbit/s, "
                  f"{policy.Link().latency * 1e3:g} ms per message, compute "
                  f"rates of the development machine); run `tf-sparsesign "
                  f"calibrate` in the job and pass --profile")
    lines = ["", f"Predicted step time (time model; {source}):", ""]
    head = ["density", "option", "step time", "fwd+bwd", "compression",
            "collectives", "collective calls", ""]
    table, notes = [head], set()
    for d in densities:
        k = sum(policy.allocate(sizes, d, num_replicas=workers))
        work = policy.Workload(n, k, workers, forward_backward=fb)
        preds = policy.predict(work, SHOWN, profile, link)
        same = [p for p in preds if p.option.exchange != "dense"]
        best = min(same, key=lambda p: p.seconds).option.name
        for p in preds:
            compression = p.seconds - p.parts["forward_backward"] - p.comm
            table.append([d if isinstance(d, str) else f"{d:g}",
                          p.option.name, _ms(p.seconds),
                          _ms(p.parts["forward_backward"]),
                          _ms(compression), _ms(p.comm),
                          str(len(p.collectives)),
                          "<- fastest (same update)" if p.option.name ==
                          best else ""])
        notes |= {n for p in preds for n in p.notes}
    lines += aligned(table)
    lines += [f"note: {n}" for n in sorted(notes)]
    return "\n".join(lines)
