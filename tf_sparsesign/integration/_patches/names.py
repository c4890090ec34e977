"""Private Keras and TensorFlow names read (not replaced)."""

from __future__ import annotations

import tensorflow as tf


def var_key(optimizer):
    """The optimizer's own variable key (maps a replica's component of a
    distributed variable to the variable)."""
    return optimizer._var_key


def optimizer_strategy(optimizer):
    """The strategy the optimizer was created under (None if unknown)."""
    return getattr(optimizer, "_distribution_strategy", None)


def own_variables(optimizer) -> list:
    """The optimizer's own variables, without any wrapped optimizer's."""
    return optimizer._variables


def track_variable(optimizer, variable) -> None:
    """Makes ``variable`` one of the optimizer's own (saved with them)."""
    optimizer._track_variable(variable)


def as_trackable(serialize, restore, structure):
    """A ``tf.train.Checkpoint`` dependency that saves ``serialize()``
    (a dict of tensors) and hands the restored dict to ``restore``.
    SavedModel export traces both into graphs (for a plain
    ``tf.saved_model.load``, which revives no optimizer): traced, they
    keep the structure only: ``structure()`` gives ``{key: (shape,
    dtype)}`` without reading a value."""
    from tensorflow.python.trackable import base as trackable_base

    class _Saved(trackable_base.Trackable):
        def _serialize_to_tensors(self):
            if tf.executing_eagerly():
                return serialize()
            # Traced for a SavedModel: the structure only (the values are
            # written eagerly, with the SavedModel's checkpoint).
            return {k: tf.zeros(shape, dtype)
                    for k, (shape, dtype) in structure().items()}

        def _restore_from_tensors(self, restored_tensors):
            if tf.executing_eagerly():
                restore(restored_tensors)
            return tf.no_op()

    return _Saved()


def take_fresh_collective_keys(strategy, base: int) -> None:
    """Several MirroredStrategy objects in one process reuse collective
    group/instance keys, and TF's collective executor then mixes up their
    ops ("Shape mismatch in the collective instance"): give ``strategy``
    its own key range. Call before ``MirroredStrategy.__init__``."""
    strategy._collective_key_base = base


def point_backup_to(callback, directory: str) -> None:
    """Makes a Keras ``BackupAndRestore`` read and write ``directory``."""
    from keras.src.utils import file_utils

    callback.backup_dir = directory
    callback._weights_path = file_utils.join(directory, "latest.weights.h5")
    callback._training_metadata_path = file_utils.join(
        directory, "training_metadata.json")
    callback._prev_weights_path = f"{callback._weights_path}.bkp"
    callback._prev_training_metadata_path = (
        f"{callback._training_metadata_path}.bkp")
