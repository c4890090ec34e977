"""Timing the compute of a step at a model's sizes: the aggregation's
parts (the library's own, built by
:class:`~tf_sparsesign.aggregation.probe.StepProbe` or, for the sharded
exchange, as one worker of M sees them), the dense baseline's apply, and
forward+backward of the user's model.

Each part is timed at the real sizes and on a tiny copy of the same
tensors (each 1/1024 of its elements, at least 64 or all), which gives the
fixed cost per call; the
profile keeps the line through both (:func:`~tf_sparsesign.policy.fit_part`
in the part's work units).
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import tensorflow as tf

from .. import policy
from ..aggregation.build import build_aggregator
from ..aggregation.probe import ScratchFactory, StepProbe, variable_key
from ..timing import median_seconds

#: The tiny copy: each tensor's elements divided by this (rounded up)...
TINY = 1024
#: ... but at least this many (or all it has), so that a top-K still
#: leaves some out.
TINY_AT_LEAST = 64


def tiny(shapes) -> list:
    """The tiny copy of ``shapes``: as many tensors, each flat with 1/1024
    of the elements (at least 64, or all it has)."""
    out = []
    for s in shapes:
        n = math.prod(s)
        out.append((max(min(n, TINY_AT_LEAST), math.ceil(n / TINY)),))
    return out


class OneOfM:
    """Collectives as one worker of M sees them in the sharded exchange
    (the :class:`~tf_sparsesign.aggregation.interfaces.Collectives`
    contract): it owns shard 0 and receives shard 0's bucket from each of
    the M replicas' messages it is handed; the shard votes it gathers are
    M copies of its own (the same sizes). Nothing crosses a wire."""

    def __init__(self, m: int):
        self.m = int(m)

    def replica_ids(self, local: list) -> list:
        return [0]

    def gather(self, local: list) -> tf.Tensor:
        return tf.stack(local if len(local) == self.m else
                        [local[0]] * self.m)

    def all_to_all(self, local: list) -> list:
        return [tf.stack([t[0] for t in local])]

    def sum(self, local: list, host_sum) -> tf.Tensor:
        return host_sum


class ShardWorkerProbe:
    """The sharded exchange's parts as one worker of M runs them: the
    library's aggregation built with :class:`OneOfM` collectives over
    scratch variables; M replicas' messages from M random gradients."""

    def __init__(self, config, shapes, m: int, sgd: bool = True):
        self.variables = [tf.Variable(tf.zeros(s), name=f"v{i}")
                          for i, s in enumerate(shapes)]
        self.aggregator = build_aggregator(
            config, self.variables, m, ScratchFactory(), variable_key,
            learning_rate=(lambda: 1e-3) if sgd else None,
            collectives=OneOfM(m))
        self.messages = [self._message(r) for r in range(m)]

    def _present(self, replica: int) -> list:
        return [(i, i, tf.random.stateless_normal(v.shape, [1, replica * 1000
                                                          + i]))
                for i, v in enumerate(self.variables)]

    def _message(self, replica: int):
        agg = self.aggregator
        step = agg.memory.begin()
        codes, values = agg.encode(step, self._present(replica))
        step.commit(after=codes)
        return agg.exchange.message(codes, values).words

    def parts(self) -> dict:
        """``encode``, ``message`` and ``host_step`` (``tf.function``)."""
        agg, present = self.aggregator, self._present(0)
        step = agg.memory.begin()
        codes, values = agg.encode(step, present)
        step.commit(after=codes)

        def encode():
            s = agg.memory.begin()
            out = agg.encode(s, present)
            s.commit(after=out[0])
            return out

        return {"encode": tf.function(encode),
                "message": tf.function(
                    lambda: agg.exchange.message(codes, values).words),
                "host_step": tf.function(
                    lambda: agg.exchange.host_step(self.messages))}


def _option_parts(config, option, shapes, m, sgd, first):
    """``{profile key: callable}`` of ``option``'s parts (the shared ones,
    check_finite, encode and apply, only for the ``first`` option of its
    exchange; the sharded exchange's probe has no check_finite and apply,
    which the all-gather's give)."""
    cfg = dataclasses.replace(config, aggregation=option.exchange,
                              wire=option.wire, downlink=option.downlink)
    key = f"{option.exchange}/{option.wire}"
    with warnings.catch_warnings():  # a wasteful setting warns in training
        warnings.simplefilter("ignore", UserWarning)
        if option.exchange == "sharded":
            parts = ShardWorkerProbe(cfg, shapes, m, sgd).parts()
        else:
            parts = StepProbe(cfg, shapes, m, sgd=sgd).parts()
    wanted = {f"message/{key}": parts["message"],
              f"host_step/{key}": parts["host_step"]}
    if first:
        wanted[f"encode/{option.exchange}"] = parts["encode"]
        for name in ("check_finite", "apply"):
            if name in parts:
                wanted[name] = parts[name]
    return wanted


def dense_apply(shapes):
    """The dense baseline's compute after its all-reduce: the gradients
    packed into one tensor and split again (what TensorFlow does around
    the all-reduce) and Keras SGD's update of every variable."""
    import keras

    variables = [keras.Variable(tf.zeros(s)) for s in shapes]
    grads = [tf.random.stateless_normal(s, [2, i])
             for i, s in enumerate(shapes)]
    optimizer = keras.optimizers.SGD(1e-3)
    optimizer.build(variables)

    @tf.function
    def run():
        flat = tf.concat([tf.reshape(g, [-1]) for g in grads], 0)
        pieces = tf.split(flat, [int(tf.size(g)) for g in grads])
        optimizer.apply([tf.reshape(p, g.shape) for p, g in
                         zip(pieces, grads)], variables)
        return optimizer.iterations

    return run


def time_option(config, shapes, m: int, option, sgd: bool = True,
                repeat: int = 3) -> dict:
    """``{part: median seconds}`` of one option's compute parts at
    ``shapes`` (every part, the shared ones included): the time breakdown
    of one step without its collectives."""
    fns = _all_parts(config, [option], shapes, m, sgd)
    return {part: median_seconds(fns[part], repeat)
            for part in part_names([option])}


def _all_parts(config, options, shapes, m, sgd) -> dict:
    """``{part: callable}`` of every option at ``shapes`` (the shared
    parts once)."""
    fns, seen = {}, set()
    for o in with_shared_parts(options):
        if o.exchange == "dense":
            fns["dense_apply"] = dense_apply(shapes)
            continue
        fns.update(_option_parts(config, o, shapes, m, sgd,
                                 o.exchange not in seen))
        seen.add(o.exchange)
    return fns


#: Parts whose work is the gradient's size N (the same at every density):
#: timed at the real sizes only, proportional to N.
N_PARTS = ("check_finite", "encode", "dense_apply")


def part_names(options) -> list:
    """The compute parts timed for ``options``, in order (the shared ones
    once per exchange)."""
    names = []
    for option in options:
        if option.exchange == "dense":
            names.append("dense_apply")
            continue
        key = f"{option.exchange}/{option.wire}"
        names += [f"message/{key}", f"host_step/{key}",
                  f"encode/{option.exchange}", "check_finite", "apply"]
    return list(dict.fromkeys(names))


def with_shared_parts(options) -> list:
    """``options``, plus the all-gather with the first sparse option's
    codec when none is there (its probe times check_finite and apply)."""
    options = list(options)
    sparse = [o for o in options if o.exchange != "dense"]
    if sparse and not any(o.exchange == "allgather" for o in sparse):
        options.append(policy.Option("allgather", sparse[0].wire))
    return options


def measurements(options) -> list:
    """``[(part, scale), ...]``: what :func:`time_parts` measures, in
    order; ``scale`` ``"real"`` for every part, ``"tiny"`` (the fixed cost
    per call) for those whose work depends on K."""
    names = part_names(options)
    return ([(p, "tiny") for p in names if p.split("/")[0] not in N_PARTS]
            + [(p, "real") for p in names])


def time_parts(config, shapes, m: int, options, sgd: bool = True,
               repeat: int = 3) -> dict:
    """``{(part, scale): (work, seconds)}`` for each of
    :func:`measurements`: every part of ``options`` built at the tiny copy
    or the real ``shapes`` and timed, with its work units. Each time is
    net of one ``tf.function`` call and read back
    (:func:`dispatch_seconds`): in the step the parts are one graph."""
    out = {}
    dispatch = dispatch_seconds(repeat)
    wanted = measurements(options)
    for scale, sizes in (("tiny", tiny(shapes)), ("real", list(shapes))):
        n = sum(math.prod(s) for s in sizes)
        k = sum(policy.allocate([math.prod(s) for s in sizes],
                                config.density, config.k, m))
        for part, fn in _all_parts(config, options, sizes, m, sgd).items():
            if (part, scale) in wanted:
                out[part, scale] = (policy.work_units(part, n, k, m), max(
                    0.0, median_seconds(fn, repeat) - dispatch))
    return out


def work_of(config, shapes, m: int, part: str, scale: str) -> float:
    """The work units of ``part`` at ``scale`` (what :func:`time_parts`
    records, without timing anything)."""
    sizes = tiny(shapes) if scale == "tiny" else list(shapes)
    n = sum(math.prod(s) for s in sizes)
    k = sum(policy.allocate([math.prod(s) for s in sizes], config.density,
                            config.k, m))
    return policy.work_units(part, n, k, m)


def dispatch_seconds(repeat: int = 3) -> float:
    """Median seconds of calling a ``tf.function`` that does nothing and
    reading its result back."""
    return median_seconds(tf.function(lambda: tf.constant(0)), repeat)


def forward_backward(strategy, model, batch):
    """A callable running forward+backward of ``model`` on ``batch``
    (``x`` or ``(x, y)``, one replica's batch) in ``strategy.run`` on every
    local replica: the compiled loss when the model has one, else the
    mean square of its output."""
    x, y = (batch if isinstance(batch, (tuple, list)) else (batch, None))

    def replica(x, y):
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            loss = (model.compute_loss(x=x, y=y, y_pred=out)
                    if getattr(model, "compiled", False) and y is not None
                    else tf.reduce_mean(tf.square(out)))
        grads = tape.gradient(loss, model.trainable_variables)
        return tf.add_n([tf.reduce_sum(g) for g in grads if g is not None])

    @tf.function
    def run():
        return strategy.experimental_local_results(
            strategy.run(replica, args=(x, y)))

    return run
