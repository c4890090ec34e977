"""Argument types shared by the experiment commands (comma lists, the
``--options`` text)."""

from __future__ import annotations

import argparse


def floats(text: str) -> tuple:
    """``"0.1,0.3"`` -> ``(0.1, 0.3)`` (argparse type)."""
    try:
        return tuple(float(v) for v in text.split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}")


def ints(text: str) -> tuple:
    """``"0,1,2"`` -> ``(0, 1, 2)`` (argparse type)."""
    try:
        return tuple(int(v) for v in text.split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}")


def options(text: str) -> str:
    """``--options`` text in its canonical form (:func:`.runs.format_options`),
    or exit with what was wrong."""
    from . import runs

    try:
        return runs.format_options(runs.parse_options(text))
    except ValueError as exc:
        raise SystemExit(f"--options: {exc}")


def names(text: str) -> tuple:
    """``"a, b,"`` -> ``("a", "b")``."""
    return tuple(v.strip() for v in text.split(",") if v.strip())
