"""One step's ops, built through the public ops API as a graph under a
device scope, and where each op was requested (tests/test_gpu_placement.py,
also run in a subprocess against a library built with the GPU kernels).
Building a graph places nothing: no GPU is needed."""

import tensorflow as tf

from tf_sparsesign import ops

SHAPE = (40, 100)
N = SHAPE[0] * SHAPE[1]
K = N // 100
M = 3

#: The step's ops that touch N-sized data (a gradient, a memory, a
#: variable, a packed message over N coordinates, the dense votes).
N_SIZED = ("SparseSignCheckFinite", "SparseSignAccumulateEncode",
           "SparseSignScatterSub", "PackedSignsEncode", "PackedSignsVote")


def step_graph(device: str) -> tf.Graph:
    """check -> fused encode -> packed message and vote -> sparse vote of
    M gathered messages -> sparse SGD write, for variables on ``device``."""
    graph = tf.Graph()
    with graph.as_default(), tf.device(device):
        w = tf.Variable(tf.zeros(SHAPE), name="w")
        memory = tf.Variable(tf.zeros(SHAPE), name="memory")
        grad = tf.random.stateless_normal(SHAPE, seed=[1, 2])
        checked = ops.check_finite(grad, "the gradient of 'w'")
        codes = ops.accumulate_encode(memory, checked, K, label="w")
        words = ops.packed_signs_encode(codes, N)
        ops.packed_signs_vote(tf.stack([words] * M), N)
        indices, votes = ops.sparse_majority_vote(tf.stack([codes] * M), N)
        ops.scatter_sub(w, indices, 0.01 * votes)
    return graph


def requested(graph: tf.Graph) -> list:
    """``[(op type, requested device, largest static output size)]``."""
    out = []
    for op in graph.get_operations():
        sizes = [t.shape.num_elements() or 0 for t in op.outputs
                 if t.shape.rank is not None]
        out.append((op.type, op.device, max(sizes, default=0)))
    return out
