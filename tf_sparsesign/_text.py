"""Settings written as text (``name=value`` on a command line or in a
candidate's spec): one value's Python form. Standard library only, so the
TensorFlow-free ``plan`` command can use it."""

from __future__ import annotations


def parse_value(text: str):
    """``"True"``/``"False"``, ints and floats as Python values; other
    text as it is.

    >>> parse_value("0.5"), parse_value("True"), parse_value("rice")
    (0.5, True, 'rice')
    """
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
