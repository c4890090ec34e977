"""The ``tf-sparsesign trial`` command line (:func:`tf_sparsesign.trial`).

Example::

  tf-sparsesign trial examples/trial_mnist.py:build --steps 300 \\
      --replicas 4 --batch-size 256 --bandwidth 1Gbit/s --out trial-mnist

``MODULE:FUNCTION`` names a function that returns the compiled model and
its data, ``(model, train_data)`` or ``(model, train_data,
validation_data)``; MODULE is an importable module name or a ``.py`` path.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path

from . import arguments


def load_function(spec: str):
    """The function named by ``MODULE:FUNCTION`` (a module name, or a path
    to a ``.py`` file)."""
    module_name, sep, name = str(spec).rpartition(":")
    if not sep or not module_name or not name:
        raise ValueError(f"expected MODULE:FUNCTION (e.g. "
                         f"examples/trial_mnist.py:build), got {spec!r}")
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.exists():
            raise ValueError(f"{spec!r}: no file {path}")
        loader = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ValueError(f"{spec!r}: {module_name} has no function {name}")
    return fn


def _trial(args: argparse.Namespace) -> int:
    from .planning import parse_bandwidth

    try:
        bandwidth = (parse_bandwidth(args.bandwidth) if args.bandwidth
                     else None)
        for name in ("price_per_worker_hour", "egress_price_per_gb"):
            value = getattr(args, name)
            if value is not None and not value >= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be a "
                                 f"price >= 0, got {value}")
        if args.replicas:
            import tensorflow as tf

            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] *
                args.replicas)
        build = load_function(args.function)
    except ValueError as exc:
        print(f"trial: {exc}", file=sys.stderr)
        return 2
    import tf_sparsesign

    tf_sparsesign.trial(
        build, steps=args.steps, candidates=args.candidates.split(","),
        batch_size=args.batch_size, search_steps=args.search_steps,
        eval_every=args.eval_every, bandwidth=bandwidth,
        profile=args.profile,
        price_per_worker_hour=args.price_per_worker_hour,
        egress_price_per_gb=args.egress_price_per_gb, out=args.out,
        seed=args.seed)
    print(f"written: {args.out}/trial.csv, trial.png, verdict.txt")
    return 0


def add_command(sub) -> None:
    """Adds ``trial`` to an argparse subparsers."""
    p = sub.add_parser("trial", help="A/B trial on your own model: dense "
                       "vs the sign methods, time and cost to dense's loss")
    p.add_argument("function", help="MODULE:FUNCTION returning (model, "
                   "train_data[, validation_data])")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--candidates", default="dense,s3gd:0.01,s3gd:0.001",
                   help="comma-separated: dense, s3gd:DENSITY, "
                   "s3gd-lion:DENSITY, signsgd, dlion (settings after ';')")
    p.add_argument("--replicas", type=int, default=None,
                   help="split the CPU into this many logical devices "
                   "(one host without GPUs)")
    p.add_argument("--batch-size", type=int, default=64,
                   help="global batch size for array data")
    p.add_argument("--search-steps", type=int, default=30,
                   help="steps per run of the learning-rate search")
    p.add_argument("--eval-every", type=int, default=None)
    p.add_argument("--bandwidth", default=None, help="project step times to"
                   " this link (e.g. 1Gbit/s) with the time model")
    p.add_argument("--profile", default=None,
                   help="calibration profile (JSON) for the time model")
    p.add_argument("--price-per-worker-hour", type=arguments.price,
                   default=None)
    p.add_argument("--egress-price-per-gb", type=arguments.price,
                   default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="trial")
    p.set_defaults(func=_trial)
