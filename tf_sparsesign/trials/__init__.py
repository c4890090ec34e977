"""Does it pay off for me? An A/B trial on the user's own model and data.

:func:`trial` trains each candidate (default: dense, S3GD-MV 1% and 0.1%)
from the same initial weights and the same data order for ``steps`` steps
under the user's strategy, and reports for each the loss curve, the
measured step time, the bytes per step, and how long (and at what price) it
takes to reach the dense run's final loss — on this cluster, and, with
``bandwidth``, on another link by the time model
(:mod:`tf_sparsesign.policy`). The sign methods' learning rate comes from a
short search (:data:`.run.COARSE_RATES`, refined around the best, each run
``search_steps`` long) unless a candidate names one; the report says which
rate each used. ``tf-sparsesign trial MODULE:FUNCTION`` runs it from the
command line.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Sequence

from .candidates import DEFAULT, Candidate, parse
from .report import outcomes, plot, verdict, write_csv
from .run import SEARCH_RUNS, search_rate, tail_loss, train

__all__ = ["trial", "TrialResult", "Candidate", "parse", "DEFAULT"]


@dataclasses.dataclass
class TrialResult:
    """What :func:`trial` found: the ``runs`` (dense first), each one's
    :class:`~.report.Outcome`, the ``target`` loss, the ``verdict``
    sentences, the ``link`` the times are for, and the files written."""

    runs: list
    outcomes: list
    target: float
    verdict: list
    link: str
    files: dict

    def __str__(self) -> str:
        return "\n".join(self.verdict)


def trial(build: Callable, *, steps: int, candidates: Sequence = DEFAULT,
          strategy=None, batch_size: int = 64, search_steps: int = 30,
          eval_every: int | None = None, bandwidth: float | None = None,
          profile=None, price_per_worker_hour: float | None = None,
          egress_price_per_gb: float | None = None, out=None, seed: int = 0,
          verbose: int = 1) -> TrialResult:
    """Trains every candidate and reports (see the module docstring).

    Args:
      build: called (once per run, with the same seed) to make the
        compiled model and its data: returns ``(model, train_data)`` or
        ``(model, train_data, validation_data)``; train data is a
        ``tf.data.Dataset`` of ``(x, y)`` batches or ``(x, y)`` arrays.
      steps: training steps per candidate.
      candidates: :class:`Candidate` objects or tokens for :func:`parse`
        (``"dense"``, ``"s3gd:0.01"``, ``"s3gd-lion:0.01"``, ``"dlion"``,
        ...); the first dense one is the reference (added when missing).
      strategy: the strategy to train under (default: a dense
        :class:`~tf_sparsesign.SparseSignStrategy` over every local
        device); each candidate is a
        :class:`~tf_sparsesign.SparseSignOptimizer` around a fresh copy of
        the model's optimizer.
      batch_size: batch size for array data.
      search_steps: steps of each run of the learning-rate search.
      eval_every: validation every this many steps (default: at the end).
      bandwidth: bits per second of another link to project the step times
        to (the time model, with ``profile`` when given).
      profile: a :class:`~tf_sparsesign.policy.profile.Profile` or its JSON
        path (:func:`tf_sparsesign.calibrate`).
      price_per_worker_hour, egress_price_per_gb: prices for the costs.
      out: folder for ``trial.csv``, ``trial.png`` and ``verdict.txt``.
      seed: the seed of the initial weights (same for every candidate).
      verbose: 1 prints progress and the verdict; 0 is silent.
    """
    import keras

    from ..integration.strategy import SparseSignStrategy

    chosen = [c if isinstance(c, Candidate) else parse(c)
              for c in candidates]
    if not any(c.dense for c in chosen):
        chosen.insert(0, parse("dense"))
    chosen.sort(key=lambda c: not c.dense)  # the reference first
    strategy = strategy or SparseSignStrategy(dense=True)
    searches = sum(c.lr is None and not c.dense for c in chosen)
    progress = keras.utils.Progbar(
        len(chosen) * steps + searches * SEARCH_RUNS * search_steps,
        verbose=verbose, unit_name="step") if verbose else None
    runs = []
    for cand in chosen:
        lr, searched = cand.lr, []
        if lr is None and not cand.dense:
            _say(verbose, f"{cand.name}: learning-rate search")
            lr, searched = search_rate(lambda rate: tail_loss(train(
                build, cand.name, cand.settings, rate, search_steps,
                strategy, batch_size, seed, progress=progress).losses))
        _say(verbose, f"{cand.name}: {steps} steps" +
             (f" at lr {lr:g}" if lr is not None else ""))
        run = train(build, cand.name, cand.settings, lr, steps, strategy,
                    batch_size, seed, eval_every, progress=progress)
        run.searched = searched
        runs.append(run)
    link, times = _step_times(runs, bandwidth, profile)
    target, results = outcomes(runs, times, strategy.num_replicas_in_sync,
                               price_per_worker_hour, egress_price_per_gb)
    lines = verdict(target, results, link, steps)
    files = _write(out, runs, results, target, link, lines)
    _say(verbose, "\n".join(lines))
    return TrialResult(runs, results, target, lines, link, files)


def _step_times(runs, bandwidth, profile) -> tuple:
    """``(link text, {name: step seconds})``: measured here, or predicted
    by the time model at ``bandwidth``."""
    if bandwidth is None:
        return "measured here", {r.name: r.step_seconds for r in runs}
    from .projection import predicted_step_seconds

    return (f"at {bandwidth / 1e9:g} Gbit/s",
            predicted_step_seconds(runs, bandwidth, profile))


def _write(out, runs, results, target, link, lines) -> dict:
    if out is None:
        return {}
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    files = {"csv": folder / "trial.csv", "png": folder / "trial.png",
             "verdict": folder / "verdict.txt"}
    write_csv(files["csv"], runs)
    plot(files["png"], runs, results, target, link)
    files["verdict"].write_text("\n".join(lines) + "\n")
    return files


def _say(verbose: int, text: str) -> None:
    if verbose:
        print(f"\ntf_sparsesign trial: {text}", flush=True)

