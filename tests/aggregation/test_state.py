"""state.py: counters, and every replica's memory saved under its own key
(Keras stores, tf.train.Checkpoint tensors), reset with a warning when the
job changed."""

import numpy as np
import pytest
import tensorflow as tf

from fakes import state


def test_counters_add_up_and_message_bytes_is_the_last():
    s = state([tf.Variable(tf.zeros([3]))])
    s.add_counter("overflow")
    for sent in (10, 20):
        s.count_step(4, sent, sent, 100, 1, overflow=2, unknown=5)
    c = s.read_counters()
    assert c == {"steps": 2, "message_bytes": 4, "bytes_sent": 30,
                 "bytes_received": 30, "dense_bytes": 200,
                 "dropped_rows": 2, "overflow": 4}


def test_memories_round_trip_through_a_store():
    from tf_sparsesign.aggregation import state as state_lib

    v = tf.Variable(tf.zeros([2, 2]))
    a = state([v], m=1, error_feedback=True)
    a.memories[0].assign([[1.0, 2.0], [3.0, 4.0]])
    store = {}
    state_lib.save_to_store(a, store)
    assert set(store) == {"sparsesign_replicas", "sparsesign_memory_0_0"}
    b = state([v], m=1, error_feedback=True)
    state_lib.load_from_store(b, store)
    np.testing.assert_array_equal(b.memories[0].numpy(),
                                  a.memories[0].numpy())
    assert state_lib.without_our_keys({**store, "0": 1}) == {"0": 1}


def test_another_job_shape_or_worker_resets_with_a_warning():
    from tf_sparsesign.aggregation import state as state_lib

    v = tf.Variable(tf.zeros([2]))
    a = state([v], m=2, error_feedback=True)
    a.memories[0].assign([1.0, 1.0])
    tensors = state_lib.checkpoint_tensors(a, worker=0)
    b = state([v], m=4, error_feedback=True)
    b.memories[0].assign([5.0, 5.0])
    with pytest.warns(UserWarning, match="reset to zero"):
        state_lib.restore_checkpoint_tensors(b, tensors, worker=0)
    np.testing.assert_array_equal(b.memories[0].numpy(), [0, 0])
    c = state([v], m=2, error_feedback=True)
    with pytest.warns(UserWarning, match="worker 0's memories and this is "
                                         "worker 1"):
        state_lib.restore_checkpoint_tensors(c, tensors, worker=1)
    state_lib.restore_checkpoint_tensors(c, tensors, worker=0)
    np.testing.assert_array_equal(c.memories[0].numpy(), [1, 1])
