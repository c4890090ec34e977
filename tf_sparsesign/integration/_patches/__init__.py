"""Every private Keras and TensorFlow name this package touches, in one place
(this package: :mod:`.replacements` the replacements and guards, :mod:`.names` the
private names read, :mod:`.collectives` the collective launches).

Keras 3 has no public hook for gradient aggregation (keras-team/keras#19308
is open): ``TFOptimizer._backend_update_step`` always calls the private
``_all_reduce_sum_gradients`` in replica context, the one place Keras 3
sums gradients across replicas (so since about Keras 3.5,
keras-team/keras#19467, #19969). :func:`install` replaces, process-wide,
with versions that behave exactly as before for every optimizer without an
aggregator:

* ``TFOptimizer._all_reduce_sum_gradients`` — vote instead of the SUM;
* ``BaseOptimizer.build`` — optimizers built under a sparse-sign strategy
  get their aggregator;
* ``BaseOptimizer._backend_apply_gradients`` — stop non-finite gradients
  before any write; fail if the vote did not run; with
  ``gradient_accumulation_steps``, accumulate per replica and vote every
  A-th micro-step (:mod:`.accumulation`, which calls ``_iterations``,
  ``_clip_gradients``, ``_use_weight_decay`` and
  ``_distributed_tf_update_step``);
* ``BaseOptimizer.save_own_variables`` / ``load_own_variables`` — save
  every replica's memory (Keras stores restore one value to all);
* ``TensorFlowTrainer.make_train_function`` — ``jit_compile=True`` falls
  back (the ops have no XLA kernels).

Private names only read: ``optimizer._var_key`` (maps a replica's component
to its variable), ``._track_variable`` (counters are saved with the
optimizer), ``._distribution_strategy``, ``._variables`` (the wrapper's
own); ``MirroredStrategy._collective_key_base`` (fresh keys per strategy);
``BackupAndRestore``'s file paths (one directory per worker);
``tensorflow.python.trackable.base.Trackable`` (``tf.train.Checkpoint``).

Guards: an unsupported Keras fails at install with the version found and
the supported range; every target is checked to exist before anything is
replaced; a step that applies gradients without having passed through the
vote raises instead of silently training dense.
"""

from .collectives import CROSS_WORKER  # noqa: F401
from .replacements import (AGGREGATOR_ATTR, KERAS_SUPPORTED, TARGETS,  # noqa: F401
                    TESTED_KERAS, attach, check_keras_version, install,
                    resolve, supported_range)
from .names import (as_trackable, optimizer_strategy,  # noqa: F401
                    own_variables, point_backup_to,
                    take_fresh_collective_keys, track_variable, var_key)
