"""The models the experiments train (flat float32 inputs in [0, 1]).

* ``mlp`` — ``Dense(hidden, relu) -> Dense(classes)`` (784-128-10 in the
  published MNIST sweep, N = 101,770);
* ``cnn`` — the authors' MNIST network (chanho26/SignSGD_Codec,
  ``Algorithms/model.py``, ``Net``): the 784 inputs reshaped to 28x28x1,
  ``Conv(32, 5x5) -> ReLU -> MaxPool 2 -> Conv(64, 5x5) -> ReLU -> MaxPool 2
  -> Dense(512, ReLU) -> Dense(classes)``, N = 582,026 for 10 classes
  (``hidden`` is ignored). Keras' default initialisers (Glorot uniform,
  zero biases) instead of PyTorch's.

Example:

>>> MODELS
('mlp', 'cnn')
"""

from __future__ import annotations

MODELS = ("mlp", "cnn")


def build_model(name: str, inputs: int, hidden: int, classes: int):
    """A fresh Keras model ``name`` (one of :data:`MODELS`).

    Args:
      name: ``"mlp"`` or ``"cnn"``.
      inputs: input features (the CNN needs 784, a 28x28 image).
      hidden: MLP hidden units (ignored by the CNN).
      classes: output logits.
    """
    import keras

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
