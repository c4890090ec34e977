"""The optimizer each sweep run builds under the strategy's scope.

``sgd`` (``keras.optimizers.SGD``, the default and the only one older CSVs
know), ``adam``, ``adamw`` (``keras.optimizers.Adam`` / ``AdamW``: the same
rule, AdamW with decoupled weight decay) and ``lion``
(``keras.optimizers.Lion``), all with Keras' default betas. The run's
``lr`` is that optimizer's learning rate. ``weight_decay`` (a sweep flag,
0 = none) is Keras' decoupled decay, ``x <- x - lr * wd * x`` each step,
for every optimizer. Under a voting strategy the optimizer applies the
vote's ternary tensor as its gradient (what the library does with any
wrapped optimizer); under ``dense`` it applies the mean gradient.

Two ``--options`` go to the optimizer instead of the strategy
(:data:`OPTIMIZER_OPTIONS`): ``momentum=`` (SGD only) and
``lr_schedule=cosine`` (the rate decays from ``lr`` to 0 over the run,
``keras.optimizers.schedules.CosineDecay``).

>>> LABELS["adamw"], default_lrs("lion")
('AdamW', (0.0001, 0.0003, 0.001))
"""

from __future__ import annotations

OPTIMIZERS = ("sgd", "adam", "adamw", "lion")
LABELS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "lion": "Lion"}
#: Options that go to the optimizer instead of the strategy.
OPTIMIZER_OPTIONS = ("momentum", "lr_schedule")
#: Values of ``lr_schedule``.
LR_SCHEDULES = ("constant", "cosine")


def check(name: str) -> str:
    """``name`` if it is one of :data:`OPTIMIZERS`, else a ValueError."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of "
                         f"{OPTIMIZERS}")
    return name


def default_lrs(name: str) -> tuple:
    """The default rate grid of every method under optimizer ``name``
    (not ``sgd``: its grids depend on the method, see
    :data:`.methods.DEFAULT_LRS`)."""
    return (1e-4, 3e-4, 1e-3) if name == "lion" else (3e-4, 1e-3, 3e-3)


def learning_rate(lr: float, steps: int, schedule: str = "constant"):
    """The rate: ``lr``, or a cosine decay from ``lr`` to 0 over
    ``steps``."""
    import keras

    if schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got "
                         f"{schedule!r}")
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(lr, steps)
    return lr


def build(name: str, lr: float, steps: int, weight_decay: float = 0.0,
          lr_schedule: str = "constant", **extra):
    """A fresh Keras optimizer ``name`` (build it under the strategy's
    scope); ``extra``: ``momentum`` for SGD."""
    import keras

    check(name)
    if extra and (name != "sgd" or set(extra) != {"momentum"}):
        raise ValueError(f"options {sorted(extra)} do not apply to "
                         f"optimizer {name!r} (only sgd takes momentum=)")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    rate = learning_rate(lr, steps, lr_schedule)
    kind = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam,
            "adamw": keras.optimizers.AdamW,
            "lion": keras.optimizers.Lion}[name]
    decay = float(weight_decay) if name == "adamw" else (
        float(weight_decay) or None)            # AdamW wants a float
    return kind(rate, weight_decay=decay, **extra)
