"""The aggregation step, as small parts chosen once per optimizer.

One step on every replica (:mod:`.aggregator`), each part satisfying its
Protocol in :mod:`.interfaces`::

    encode   (memory.py + select/)    error feedback around the selector:
                                      top-K signs (fused in place), random-K,
                                      every sign (signSGD-MV)
    message  (exchange/, codec/,      codec words behind the settings
              framing.py)             fingerprint: int32 codes, Rice, packed
    gather   (exchange/)              all-gather (everyone gets everything),
                                      or sharded (all-to-all, shard votes,
                                      all-gather of the votes)
    decode   (codec/, framing.py)     settings check, words back to codes
    combine  (combine/)               majority, fd (untrusted workers),
                                      weighted, mean of values
    apply    (apply.py)               sparse SGD on the touched coordinates,
                                      or gradients for the wrapped optimizer

:mod:`.build` chooses and constructs the parts (names come from
:mod:`.registry`); :mod:`.state` holds the state as data (memories,
counters) and its checkpointing; :mod:`.dense` is the dense baseline;
:mod:`.timing` runs the real parts at a model's sizes without a network.
Nothing here touches Keras: the integration passes in how to create
variables, identify them, launch collectives and write variables.
"""
