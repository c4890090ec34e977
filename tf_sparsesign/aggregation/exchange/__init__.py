"""Exchanges: how the replicas' selections become one update — the middle
of the step (gather -> decode -> combine).

An exchange is built once, ``Exchange(config, layout, state, ks, parts,
combiner, frame, collectives)`` (``parts.codec`` writes its messages), and
does per step::

    message(codes, values, adversary) -> (message, kept)
        replica context: this replica's message from its selected codes
        (global index space) and values; ``kept`` (bool like ``codes``) marks
        the codes it actually carries, or is None when it carries them all.
    host_step(strategy, message) -> (SparseUpdate, dropped, down_words)
        cross-replica context, once per host: every replica's messages in,
        the step's update out (:mod:`..combine`); ``down_words`` is the
        length of data-dependent downlink messages (0 when static).
    wire(message, down_words) -> (own, sent, received)
        this replica's bytes for the counters, from the messages' sizes.

* :mod:`.allgather` — everyone gets every message and votes itself.
* :mod:`.sharded` — each worker owns the coordinates ``i mod M``, receives
  everyone's codes for them (one all-to-all), votes them, and returns the
  result (one all-gather): traffic flat in the number of workers.

Register a new exchange in :data:`..registry.EXCHANGES`.
"""
