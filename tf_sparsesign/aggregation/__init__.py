"""The aggregation step, as small parts chosen once per optimizer.

One step on every replica (:mod:`.aggregator`)::

    encode  (memory.py + select/)   error feedback, top-K (or random-K) signs
    gather  (one all-gather)        one int32 message per replica
    decode  (codec/, framing.py)    settings check, int32 or Rice words
    combine (combine/)              majority / weighted vote, mean of values
    split   (layout.py)             per-variable gradients -> apply

:mod:`.registry` maps the names users choose (``method=``, ``wire=``,
``vote=``) to the parts; :mod:`.state` holds the state as data (memories,
counters, reliability) and its checkpointing; :mod:`.dense` is the dense
baseline. Nothing here touches Keras: the integration passes in how to
create variables and identify them.
"""
