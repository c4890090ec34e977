"""framing.py + validity.py: the settings fingerprint in front of every
message, and what a foreign one does under each on_invalid."""

import numpy as np
import pytest
import tensorflow as tf

from tf_sparsesign.aggregation.framing import SettingsFrame
from tf_sparsesign.aggregation.validity import REACT
from tf_sparsesign.config import SparseSignConfig


def test_wrap_puts_the_fingerprint_first_in_every_row():
    frame = SettingsFrame(SparseSignConfig(), 12345)
    np.testing.assert_array_equal(frame.wrap(tf.constant([7, 8])),
                                  [12345, 7, 8])
    np.testing.assert_array_equal(frame.wrap(tf.constant([[1], [2]])),
                                  [[12345, 1], [12345, 2]])


def test_open_admits_own_rows_and_drops_foreign_ones():
    frame = SettingsFrame(SparseSignConfig(on_invalid="drop"), 5)
    words, admitted, checks = frame.open(tf.constant([[5, 1], [6, 2]]))
    assert checks == []
    np.testing.assert_array_equal(words, [[1], [2]])
    np.testing.assert_array_equal(admitted, [True, False])


def test_a_foreign_fingerprint_raises_naming_fingerprints_and_settings():
    frame = SettingsFrame(SparseSignConfig(wire="rice"), 5)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"different settings.*\[5 6\].*fingerprint 5.*"
                             r"wire='rice'"):
        _, _, checks = frame.open(tf.constant([[5, 1], [6, 2]]))
        tf.group(checks)  # eager: raised above; in a graph: here
    _, admitted, checks = frame.open(tf.constant([[5, 1], [5, 2]]))
    tf.group(checks)  # all own: passes
    np.testing.assert_array_equal(admitted, [True, True])


def test_react_raising_names_the_first_bad_row():
    with pytest.raises(tf.errors.InvalidArgumentError, match="row 1 of 3"):
        valid, checks = REACT["raise"](
            tf.constant([True, False, False]),
            lambda first, m: tf.strings.format("row {} of {}", (first, m)))
        tf.group(checks)
    valid, checks = REACT["drop"](tf.constant([True, False]), None)
    assert checks == [] and valid.numpy().tolist() == [True, False]
