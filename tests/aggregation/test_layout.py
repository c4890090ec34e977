"""layout.py: the variables laid end to end in one global index space."""

import numpy as np
import pytest
import tensorflow as tf

from tf_sparsesign.aggregation.layout import Layout
from tf_sparsesign.aggregation.probe import variable_key
from tf_sparsesign.constants import MAX_ELEMENTS


def variables():
    return [tf.Variable(tf.zeros(s), name=f"v{i}")
            for i, s in enumerate([(2, 3), (4,), (1, 1)])]


def test_offsets_sizes_and_indices():
    vs = variables()
    layout = Layout(vs, variable_key)
    assert layout.sizes == [6, 4, 1] and layout.total == 11
    assert layout.offsets == [0, 6, 10]
    assert [layout.index_of(v) for v in vs] == [0, 1, 2]
    assert layout.variable(1) is vs[1]
    assert layout.label(2).startswith("v2")


def test_a_foreign_variable_is_named():
    layout = Layout(variables(), variable_key)
    with pytest.raises(ValueError, match="variable other.* was not among"):
        layout.index_of(tf.Variable(0.0, name="other"))


def test_present_skips_none_and_densifies_indexed_slices():
    vs = variables()
    layout = Layout(vs, variable_key)
    sparse = tf.IndexedSlices(tf.ones([1]), tf.constant([2]),
                              tf.constant([4]))
    present = layout.present([(None, vs[0]), (sparse, vs[1]),
                              (tf.ones([1, 1]), vs[2])])
    assert [(p, i) for p, i, _ in present] == [(1, 1), (2, 2)]
    np.testing.assert_array_equal(present[0][2], [0, 0, 1, 0])


def test_codes_shift_into_the_global_space_and_padding_stays():
    layout = Layout(variables(), variable_key)
    codes = tf.constant([1, 4, -1], tf.int32)  # index 0 -, index 2 +, pad
    np.testing.assert_array_equal(layout.to_global(codes, 1), [13, 16, -1])
    np.testing.assert_array_equal(layout.to_global(codes, 0), [1, 4, -1])


def test_index_space_limit(monkeypatch):
    layout = Layout(variables(), variable_key)
    layout.check_index_space()
    layout.total = MAX_ELEMENTS
    with pytest.raises(ValueError, match="must stay below"):
        layout.check_index_space()


def test_shapes_must_be_known():
    class Unknown:
        shape = tf.TensorShape([None, 3])
        name = "u"

    with pytest.raises(ValueError, match="fully defined variable shapes"):
        Layout([Unknown()], id)
