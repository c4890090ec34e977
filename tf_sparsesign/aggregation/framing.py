"""Every message starts with its sender's settings fingerprint (the
message's frame; its setting, ``on_invalid``, is bound when built).

``[fingerprint, words ...]``: a replica started with other settings (or
another model) is caught at the first step, before its rows are voted:
with ``on_invalid="raise"`` the step fails with a message listing the
fingerprints and this worker's settings; with ``"drop"`` that row abstains
and is counted.
"""

from __future__ import annotations

import tensorflow as tf

from .. import config as config_lib
from .validity import REACT


class SettingsFrame:
    """Adds and checks the fingerprint word."""

    def __init__(self, config, fingerprint: int):
        self.fingerprint = int(fingerprint)
        self._react = REACT[config.on_invalid]
        # Literal braces would be read as placeholders by strings.format.
        text = config_lib.mismatch_message("{}", "{}", config)
        self._message = text.replace("{}", "\0").replace(
            "{", "(").replace("}", ")").replace("\0", "{}")

    def wrap(self, words: tf.Tensor) -> tf.Tensor:
        """``words`` (``[..., W]``) behind the fingerprint: ``[..., 1+W]``."""
        head = tf.fill(tf.concat([tf.shape(words)[:-1], [1]], 0),
                       tf.constant(self.fingerprint, tf.int32))
        return tf.concat([head, words], axis=-1)

    def open(self, rows: tf.Tensor):
        """``(words [M, W], admitted [M] bool, checks)``: ``checks`` must
        run before the words are used (the raising settings check)."""
        prints = rows[:, 0]
        admitted, checks = self._react(
            tf.equal(prints, self.fingerprint),
            lambda first, m: tf.strings.format(self._message,
                                               (prints, self.fingerprint)))
        return rows[:, 1:], admitted, checks
