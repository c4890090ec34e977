"""apply.py: the sparse update as gradients for the wrapped optimizer, or
written directly (plain SGD) on the touched coordinates only."""

import numpy as np
import tensorflow as tf

from tf_sparsesign.aggregation.apply import (DenseGradients, SparseSGD,
                                             write_directly)
from tf_sparsesign.aggregation.interfaces import SparseUpdate
from tf_sparsesign.aggregation.layout import Layout
from tf_sparsesign.aggregation.probe import variable_key


def setup():
    vs = [tf.Variable(tf.ones([2, 2])), tf.Variable(tf.ones([3]))]
    layout = Layout(vs, variable_key)
    update = SparseUpdate(tf.constant([1, 4, 6], tf.int32),
                          tf.constant([1.0, -1.0, 1.0]))
    present = [(0, 0, None), (1, 1, None)]
    return vs, layout, update, present


def test_dense_gradients_scatter_the_update_per_variable():
    vs, layout, update, present = setup()
    out = DenseGradients(layout).gradients(update, present,
                                           [(None, v) for v in vs])
    np.testing.assert_array_equal(out[0][0], [[0, 1], [0, 0]])
    np.testing.assert_array_equal(out[1][0], [-1, 0, 1])
    assert out[0][1] is vs[0]


def test_a_missing_gradient_stays_none():
    vs, layout, update, _ = setup()
    out = DenseGradients(layout).gradients(update, [(1, 1, None)],
                                           [(None, vs[0]), (None, vs[1])])
    assert out[0][0] is None
    np.testing.assert_array_equal(out[1][0], [-1, 0, 1])


def test_sparse_sgd_writes_lr_times_the_vote_on_touched_coordinates():
    vs, layout, update, present = setup()
    writes = []

    def write(variable, local, step):
        writes.append(local.numpy().tolist())
        write_directly(variable, local, step)

    apply = SparseSGD(lambda: 0.5, layout, write)
    apply.host_step(update, present)
    np.testing.assert_array_equal(vs[0].numpy(), [[1, 0.5], [1, 1]])
    np.testing.assert_array_equal(vs[1].numpy(), [1.5, 1, 0.5])
    assert writes == [[1], [0, 2]]
    assert apply.gradients(update, present, []) == []
