"""Argument types shared by the experiment commands (comma lists, the
``--options`` text)."""

from __future__ import annotations

import argparse

from .._text import parse_value


def floats(text: str) -> tuple:
    """``"0.1,0.3"`` -> ``(0.1, 0.3)`` (argparse type)."""
    try:
        return tuple(float(v) for v in text.split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}")


def price(text: str) -> float:
    """A price: a finite number >= 0 (a leading ``$`` is allowed)."""
    try:
        value = float(text.strip().lstrip("$"))
    except ValueError:
        value = float("nan")
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(
            f"expected a price >= 0 such as 2.5 or $0.09, got {text!r}")
    return value


def ints(text: str) -> tuple:
    """``"0,1,2"`` -> ``(0, 1, 2)`` (argparse type)."""
    try:
        return tuple(int(v) for v in text.split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}")


def options(text: str) -> str:
    """``--options`` text in its canonical form (:func:`format_options`),
    or exit with what was wrong."""
    try:
        return format_options(parse_options(text))
    except ValueError as exc:
        raise SystemExit(f"--options: {exc}")


def names(text: str) -> tuple:
    """``"a, b,"`` -> ``("a", "b")``."""
    return tuple(v.strip() for v in text.split(",") if v.strip())


def parse_options(text: str) -> dict:
    """``"vote=fd;momentum=0.9"`` -> ``{"vote": "fd", "momentum": 0.9}``
    (numbers and True/False become Python values).

    >>> parse_options("momentum=0.9;vote=fd;error_feedback=False")
    {'momentum': 0.9, 'vote': 'fd', 'error_feedback': False}
    """
    out = {}
    for part in filter(None, (p.strip() for p in str(text).split(";"))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"options must be name=value pairs joined by "
                             f"';', got {text!r}")
        out[name.strip()] = parse_value(value.strip())
    return out


def format_options(options: dict) -> str:
    """The canonical text of ``options`` (sorted by name), as in the CSV.

    >>> format_options({"vote": "fd", "momentum": 0.9})
    'momentum=0.9;vote=fd'
    """
    return ";".join(f"{k}={options[k]}" for k in sorted(options))
