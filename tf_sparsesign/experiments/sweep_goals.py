"""The MNIST sweep's goals (issue 3), checked on a
:func:`.reporting.summarize` summary."""

from __future__ import annotations

import math


def find(summary, split, method, density=None, ef=None):
    """The summary entry of (split, method[, density, error feedback]),
    or None."""
    for s in summary:
        if (s["split"] == split and s["method"] == method and
                (density is None or math.isclose(s["density"], density)) and
                (ef is None or s["error_feedback"] == ef)):
            return s
    return None


def bits_per_coord(s) -> float:
    """Uplink message bits per coordinate (1.6 for packed signSGD-MV)."""
    return s["message_bits_per_step"] / s["params"]


def goals(summary) -> list[str]:
    """The issue's three goals, checked on the summary (lines of text)."""
    out = []
    d, e = find(summary, "iid", "dense"), find(summary, "iid", "s3gd_mv",
                                                0.01, True)
    if d and e:
        delta = 100 * (e["acc_mean"] - d["acc_mean"])
        wire = d["wire_bits_per_step"] / e["wire_bits_per_step"]
        up = d["message_bits_per_step"] / e["message_bits_per_step"]

        def verdict(ok):
            return "**met**" if ok else "**missed**"
        out.append(
            f"- IID, S3GD-MV 1% EF vs dense SGD: accuracy {delta:+.2f} "
            f"points (goal ≥ −1.0: {verdict(delta >= -1.0)}); {wire:.1f}× "
            "fewer wire bits per worker, ring all-gather vs ring all-reduce "
            f"(goal ≥ 30×: {verdict(wire >= 30)}); {up:.1f}× fewer uplink "
            f"message bits, 32·(1+K) vs 32·N ({verdict(up >= 30)}).")
    for split in ("iid", "noniid"):
        sign = find(summary, split, "signsgd_mv")
        if not sign:
            continue
        one_bit = (sign["workers"] - 1) * sign["params"]
        for s in summary:
            if s["split"] != split or s["method"] != "s3gd_mv":
                continue
            w = s["wire_bits_per_step"]
            ok = s["acc_mean"] >= sign["acc_mean"] and w <= one_bit / 3
            out.append(
                f"- {split}, {s['label']} vs signSGD-MV: "
                f"{100 * (s['acc_mean'] - sign['acc_mean']):+.2f} points, "
                f"bits {w / one_bit:.3f}× of 1-bit signSGD-MV "
                f"({w / sign['wire_bits_per_step']:.4f}× of its "
                f"{bits_per_coord(sign):.2g}-bit messages here): "
                f"**{'met' if ok else 'missed'}** (goal: "
                "accuracy ≥ signSGD-MV with ≤ 1/3 of its bits).")
    return out


