"""Where each variable lives in the step's global index space.

All variables' codes travel in one message: variable ``l`` owns indices
``[offset_l, offset_l + n_l)``, so a code ``(i << 1) | s`` of variable
``l`` becomes ``((offset_l + i) << 1) | s``. After the vote ``apply.py``
cuts the update back per variable.
"""

from __future__ import annotations

import itertools
from typing import Callable, Sequence

import tensorflow as tf

from ..constants import MAX_ELEMENTS


def flat_size(variable) -> int:
    """Elements of ``variable`` (its shape must be fully defined)."""
    shape = tf.TensorShape(variable.shape)
    if not shape.is_fully_defined():
        raise ValueError(f"tf_sparsesign needs fully defined variable shapes,"
                         f" got {shape} for {variable.name}")
    return int(shape.num_elements())


class Layout:
    """The variables an optimizer was built with, laid end to end.

    Args:
      variables: the trainable variables, in the optimizer's order.
      var_key: maps a variable (or a replica's component of it) to a
        stable key; the integration supplies the framework's own.
    """

    def __init__(self, variables: Sequence, var_key: Callable):
        self.variables = list(variables)
        self.sizes = [flat_size(v) for v in variables]
        self.total = sum(self.sizes)
        self.offsets = [0, *itertools.accumulate(self.sizes)][:-1]
        self._var_key = var_key
        self._indices = {var_key(v): i for i, v in enumerate(variables)}

    def check_index_space(self) -> None:
        """One step's codes must index fewer than 2**30 elements."""
        if self.total >= MAX_ELEMENTS:
            raise ValueError(
                f"tf_sparsesign: the trainable variables have {self.total} "
                "elements; one step's global index space must stay below "
                f"2**30 = {MAX_ELEMENTS}.")

    def index_of(self, variable) -> int:
        """The index of ``variable``: its position among those the layout
        was built with."""
        key = self._var_key(variable)
        if key not in self._indices:
            raise ValueError(f"tf_sparsesign: variable {variable.name} was "
                             "not among those the optimizer was built with")
        return self._indices[key]

    def variable(self, index: int):
        """The variable with this index."""
        return self.variables[index]

    def label(self, index: int) -> str:
        """The variable's name, for error messages."""
        variable = self.variables[index]
        return getattr(variable, "path", None) or variable.name

    def present(self, grads_and_vars) -> list[tuple[int, int, tf.Tensor]]:
        """``(position, index, dense gradient)`` of every pair whose
        gradient is not None (IndexedSlices become dense)."""
        return [(i, self.index_of(v), tf.convert_to_tensor(g))
                for i, (g, v) in enumerate(grads_and_vars) if g is not None]

    def to_global(self, codes: tf.Tensor, index: int) -> tf.Tensor:
        """A variable's codes shifted into the global index space."""
        shift = 2 * self.offsets[index]
        return tf.where(codes >= 0, codes + shift, codes) if shift else codes
