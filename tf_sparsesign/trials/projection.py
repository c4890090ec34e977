"""A trial's step times on another link, by the time model
(:mod:`tf_sparsesign.policy`): each run's forward+backward is the dense
run's measured step (an upper bound: it also holds this host's all-reduce),
its exchange the fastest that gives its update at that link (what ``auto``
would choose), and the collectives at ``bandwidth``."""

from __future__ import annotations

from .. import policy

#: The options a sign run may use (they give the same update).
SAME_UPDATE = ("allgather/int32", "allgather/rice", "sharded/int32",
               "sharded/rice")


def predicted_step_seconds(runs, bandwidth: float, profile=None) -> dict:
    """``{run name: predicted seconds per step}`` at ``bandwidth`` bits per
    second (``profile``: a :class:`~tf_sparsesign.policy.Profile`, its JSON
    path, or None for the documented compute defaults)."""
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be > 0 bits per second, got "
                         f"{bandwidth!r}")
    if isinstance(profile, str):
        profile = policy.load_profile(profile)
    link = policy.Link(bandwidth)
    fb = runs[0].step_seconds  # the dense reference
    out = {}
    for run in runs:
        m, n = run.replicas, run.params
        if run.settings.get("dense"):
            work = policy.Workload(n, 0, m, forward_backward=fb)
            option = "dense"
        else:
            k = sum(policy.allocate([n], run.settings.get("density", 0.01),
                                    run.settings.get("k"), m))
            work = policy.Workload(n, k, m, forward_backward=fb)
            option = ("allgather/packed" if k >= n else policy.rank(
                SAME_UPDATE, work, profile, link=link).best.option)
        out[run.name] = policy.predict(work, [option], profile,
                                       link)[0].seconds
    return out
