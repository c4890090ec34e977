"""The models the experiments train (flat float32 inputs in [0, 1]).

* ``mlp`` — ``Dense(hidden, relu) -> Dense(classes)`` (784-128-10 in the
  published MNIST sweep, N = 101,770);
* ``cnn`` — the authors' MNIST network (chanho26/SignSGD_Codec,
  ``Algorithms/model.py``, ``Net``): the 784 inputs reshaped to 28x28x1,
  ``Conv(32, 5x5) -> ReLU -> MaxPool 2 -> Conv(64, 5x5) -> ReLU -> MaxPool 2
  -> Dense(512, ReLU) -> Dense(classes)``, N = 582,026 for 10 classes
  (``hidden`` is ignored). Keras' default initialisers (Glorot uniform,
  zero biases) instead of PyTorch's.
* ``gpt`` — a byte-level GPT (:func:`build_gpt`): token embedding (256 x
  128) plus learned positions (64 x 128), 2 pre-LayerNorm blocks (causal
  ``MultiHeadAttention``, 4 heads of 32, ``use_causal_mask=True``; MLP
  128 -> 512 GELU -> 128; residuals), a final LayerNorm and an *untied*
  output ``Dense(256)`` (its own weights, not the embedding's transpose).
  Input: ``[batch, 64]`` int32 bytes; output: ``[batch, 64, 256]`` logits.
  N = 470,784 trainable coordinates in 38 tensors. Embeddings start from
  ``N(0, 0.02)``, the rest from Keras' defaults. No dropout.

Example:

>>> MODELS
('mlp', 'cnn', 'gpt')
"""

from __future__ import annotations

MODELS = ("mlp", "cnn", "gpt")


def build_model(name: str, inputs: int, hidden: int, classes: int):
    """A fresh Keras model ``name`` (one of :data:`MODELS`).

    Args:
      name: ``"mlp"``, ``"cnn"`` or ``"gpt"``.
      inputs: input features (the CNN needs 784, a 28x28 image); the GPT's
        context length.
      hidden: MLP hidden units (ignored by the CNN and the GPT).
      classes: output logits (the GPT's vocabulary).
    """
    import keras

    if name == "gpt":
        return build_gpt(context=inputs, vocab=classes)

    if name == "mlp":
        return keras.Sequential([
            keras.Input((inputs,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(classes)])
    if name == "cnn":
        if inputs != 28 * 28:
            raise ValueError(f"the cnn model takes 28x28 images (784 "
                             f"features), got {inputs} features")
        return keras.Sequential([
            keras.Input((inputs,)),
            keras.layers.Reshape((28, 28, 1)),
            keras.layers.Conv2D(32, 5, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(64, 5, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(classes)])
    raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")


def build_gpt(context: int = 64, vocab: int = 256, width: int = 128,
              blocks: int = 2, heads: int = 4):
    """The byte-level GPT of :data:`MODELS` (pre-LayerNorm, causal
    attention, learned positions, untied output layer)."""
    import keras
    from keras import layers, ops

    if width % heads:
        raise ValueError(f"width must be a multiple of heads, got width "
                         f"{width} and {heads} heads")
    init = keras.initializers.RandomNormal(stddev=0.02)
    tokens = keras.Input((context,), dtype="int32")
    positions = ops.zeros_like(tokens) + ops.arange(context, dtype="int32")
    x = (layers.Embedding(vocab, width, embeddings_initializer=init)(tokens)
         + layers.Embedding(context, width,
                            embeddings_initializer=init)(positions))
    for _ in range(blocks):
        h = layers.LayerNormalization(epsilon=1e-5)(x)
        x = x + layers.MultiHeadAttention(heads, width // heads)(
            h, h, use_causal_mask=True)
        h = layers.LayerNormalization(epsilon=1e-5)(x)
        h = layers.Dense(4 * width, activation="gelu")(h)
        x = x + layers.Dense(width)(h)
    x = layers.LayerNormalization(epsilon=1e-5)(x)
    return keras.Model(tokens, layers.Dense(vocab)(x), name="gpt")
