"""Command line: ``tf-sparsesign`` / ``python -m tf_sparsesign``.

Subcommands:
  build   compile the op library against the installed TensorFlow now
  info    show versions and whether the compiled ops are in use
  plan, calibrate, sweep, report, attack
          the experiment commands (:mod:`tf_sparsesign.experiments.cli`);
          ``plan`` is arithmetic and imports no TensorFlow (see
          :mod:`tf_sparsesign._program`)

Examples::

  tf-sparsesign build
  tf-sparsesign plan --params 25.6M --workers 8 --bandwidth 10Gbit/s
  tf-sparsesign sweep --data digits --workers 4 --steps 200 --out out/
"""

from __future__ import annotations

import argparse
import sys


def _build(args: argparse.Namespace) -> int:
    from .ops import _build as b

    try:
        path = b.build_library(force=args.force, verbose=True)
    except b.BuildError as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


def _info(args: argparse.Namespace) -> int:
    import tensorflow as tf

    from . import __version__
    from .ops import _library

    print(f"tf_sparsesign {__version__}, TensorFlow {tf.__version__}")
    err = _library.load_error()
    print("compiled ops: " + ("in use" if err is None else f"unavailable "
                              f"({err})"))
    return 0


def main(argv: list[str] | None = None) -> int:
    # The experiment commands live with the experiments; the program (not
    # the library) brings the two together.
    from .experiments import cli as experiments_cli

    parser = argparse.ArgumentParser(
        prog="tf-sparsesign",
        description="Sparse-SignSGD with Majority Vote for TensorFlow.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build", help="compile the op library now")
    p.add_argument("--force", action="store_true", help="rebuild even if "
                   "a cached library matches")
    p.set_defaults(func=_build)
    p = sub.add_parser("info", help="versions and op library status")
    p.set_defaults(func=_info)
    experiments_cli.add_commands(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
