"""memory.py: error feedback owns select, give back and commit; fused
and unfused memories end the same; no memory drops what is not sent."""

import numpy as np
import tensorflow as tf

import oracle
from tf_sparsesign.aggregation import memory as memory_lib
from tf_sparsesign.aggregation.select.random_k import RandomK
from tf_sparsesign.aggregation.select.topk import TopK


def run_step(memory, grads, kept=None):
    step = memory.begin()
    chosen = [step.select(i, tf.constant(g)) for i, g in enumerate(grads)]
    given = step.give_back(None if kept is None else tf.constant(kept))
    step.commit(after=tf.constant(0))
    return [c.codes.numpy() for c in chosen], int(given)


def test_error_feedback_selects_from_memory_plus_gradient():
    rng = np.random.default_rng(0)
    m0 = [rng.standard_normal(8).astype(np.float32),
          rng.standard_normal(5).astype(np.float32)]
    g = [rng.standard_normal(8).astype(np.float32),
         rng.standard_normal(5).astype(np.float32)]
    results = []
    for fused in (True, False):
        memories = [tf.Variable(m) for m in m0]
        mem = memory_lib.ErrorFeedback(memories, TopK(0, True), [3, 2],
                                       ["a", "b"], [fused, fused])
        codes, given = run_step(mem, g)
        assert given == 0
        for m, c, start, grad in zip(memories, codes, m0, g):
            e = start + grad
            np.testing.assert_array_equal(c, oracle.encode(e, len(c)))
            np.testing.assert_array_equal(m.numpy(), oracle.residual(e, c))
        results.append([m.numpy() for m in memories])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_give_back_returns_unsent_codes_to_the_memory():
    for fused in (True, False):
        memory = tf.Variable(np.zeros(6, np.float32))
        mem = memory_lib.ErrorFeedback([memory], TopK(0, True), [3], ["v"],
                                       [fused])
        g = np.array([0, 9, 0, -8, 7, 0.5], np.float32)
        codes, given = run_step(mem, [g], kept=[True, False, True])
        assert given == 1
        # index 3 (-8) was selected but not sent: it is back in memory
        np.testing.assert_array_equal(memory.numpy(), [0, 0, 0, -8, 0, 0.5])


def test_no_memory_sparsifies_the_raw_gradient_and_counts_what_is_lost():
    mem = memory_lib.make([], RandomK(0, True), [2], ["v"])
    assert isinstance(mem, memory_lib.NoMemory)
    step = mem.begin()
    g = tf.constant([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(step.accumulated(0, g), g)
    step.select(0, g)
    assert int(step.give_back(tf.constant([True, False]))) == 1


def test_make_fuses_only_where_the_selector_can():
    memories = [tf.Variable(tf.zeros([3]))]
    assert memory_lib.make(memories, TopK(), [1], ["v"]).fused == [True]
    assert memory_lib.make(memories, RandomK(), [1], ["v"]).fused == [False]


def test_accumulated_is_read_before_a_fused_select_clears():
    memory = tf.Variable([1.0, 2.0])
    mem = memory_lib.make([memory], TopK(), [1], ["v"])
    step = mem.begin()
    g = tf.constant([1.0, 1.0])
    before = step.accumulated(0, g).numpy()
    step.select(0, g)
    np.testing.assert_array_equal(before, [2.0, 3.0])
    np.testing.assert_array_equal(memory.numpy(), [2.0, 0.0])
