"""One settings object for every entry point: documented, validated and
fingerprinted once.

:class:`SparseSignStrategy`, :class:`MultiWorkerSparseSignStrategy` and
:class:`SparseSignOptimizer` all take ``density`` plus the keyword settings
below and turn them into one :class:`SparseSignConfig`; their docstrings
include :data:`SETTINGS_DOC`, the one place the settings are described.
No TensorFlow here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import numbers
import warnings
import zlib
from typing import Any, Sequence

from . import policy
from .aggregation import registry

#: The settings each entry point documents (``{{settings}}`` in docstrings).
SETTINGS_DOC = """\
      density: fraction of each tensor sent per step, in (0, 1], or
        ``"auto"`` (:func:`tf_sparsesign.policy.auto_density`): tensor
        ``l`` sends ``K_l = ceil(density * n_l)`` entries. Default 0.01.
        Bits per replica per step: ``32 * sum(K)`` with int32 codes, vs
        ``1.6 N`` for this library's signSGD-MV (``density=1.0``) and
        ``32 * N`` for dense fp32.
      k: a total number of entries per step, spread over the tensors by
        size; overrides ``density``. Default None.
      error_feedback: keep what was not sent and add it to the next step's
        gradient (default True). ``density=1.0, error_feedback=False`` is
        signSGD-MV: with ``method="sign_vote"`` and every tensor sending
        all its entries, no top-K selection runs and the message is packed
        signs (1.6 bits per coordinate, zeros abstain) whatever ``wire``
        says; the votes are those of int32 codes.
      dense: baseline mode: the ordinary dense all-reduce, for A/B runs
        (default False).
      shadow: the safe first stage of a rollout (default False): training
        is exactly the dense baseline (weights bit-identical to
        ``dense=True``), and each step the sparse step with these settings
        also runs (encode, exchange, vote) and is compared with the dense
        one: ``shadow_agreement`` (share of the voted coordinates whose sign
        matches the dense step's), ``shadow_cosine``, ``shadow_bytes_sent``
        next to the dense bytes, in ``communication_stats`` and the
        :class:`CommunicationLogger` logs. Costs the sparse step's compute
        and traffic on top of the dense step's (said once in the log).
      on_invalid: ``"raise"`` (default) or ``"drop"``: a malformed message
        (out-of-range or repeated indices, an undecodable Rice stream, a
        foreign settings fingerprint) stops the step with an error naming
        the row, or abstains for that step and is counted.
      wire: message format, ``"int32"`` (wire format v1, default),
        ``"rice"``: Rice-coded index gaps and signs (docs/WIRE.md), about
        3.5x smaller at 1% density, or ``"packed"``: one ternary digit per
        coordinate (sent +, sent -, not sent), 1.6 bits per coordinate
        whatever K, the smallest above ~5% (int32) / ~45% (Rice) density,
        or ``"auto"``: the fastest of the three by the time model (see
        ``aggregation``; the update is the same whichever is used).
      method: ``"sign_vote"`` (S3GD-MV, default), or the baselines
        ``"topk_values"`` (top-K SGD with error feedback, sending values;
        the mean of what was sent is applied) and ``"random_k"`` (K random
        coordinates' signs, voted).
      vote: how the sign methods combine the rows (:data:`VOTE_MODES`):
        ``"plain"`` majority vote (default), or ``"fd"``, the defense for
        untrusted workers: each row weighted by its estimated reliability
        ``w_m`` in ``[-1, 1]``, read from how its signs correlate with the
        other rows' on the coordinates both sent, so a worker that sends
        inverted signs gets a negative weight and counts the right way, one
        sending random signs about 0 (docs/RESULTS.md: with 2 or 3 of 8
        workers flipping, colluding or alternating, within 0.6 points of
        clean). ``"fd"`` needs every row of every coordinate on every
        host: it votes codes (not ``wire="packed"``, nor signSGD-MV at
        density 1, which always sends packed signs) and all-gathers
        (``aggregation="auto"`` all-gathers; ``"sharded"`` is an error).
        ``"weighted"`` (``clip(1 + log((agree + 1) / (disagree + 1)), 0,
        5)``) is kept so that optimizers saved with it load; it does not
        defend against the measured attacks (deprecated).
      seed: seed of ``random_k``'s coordinate choice (default 0).
      aggregation: how the replicas' selections are exchanged:
        ``"allgather"`` (default: every worker receives every message and
        votes itself; bytes grow with the number of workers M),
        ``"sharded"`` (coordinate i belongs to worker i mod M: one
        all-to-all of buckets, each worker votes its shard, one all-gather
        of the shard votes; bytes flat in M, and a worker trusts the shard
        owners for their shards' votes), or ``"auto"``: the faster of the
        two by the time model (:func:`tf_sparsesign.policy.rank`, from the
        ``profile`` or documented defaults; on one host by compute alone);
        when the model cannot tell the best options apart, the first steps
        time them in alternation and every worker keeps the fastest (one
        log line says which, with measured and predicted times; the
        communication stats gain ``auto_*``). It only chooses among options
        that give the same update: never ``downlink="topk"``, another
        density or dense; always the all-gather with ``vote="fd"``.
      downlink: what a shard returns when sharded: ``"exact"`` (default,
        every nonzero vote: the same result as the all-gather) or
        ``"topk"`` (only its ``ceil(K/M)`` strongest votes: O(K) bytes per
        worker whatever M, but a different algorithm).
      shard_capacity: bucket capacity factor when sharded: each bucket
        holds ``ceil(shard_capacity * K / M)`` codes (default 1.25); codes
        that do not fit stay in the error-feedback memory for a later step
        and are counted (``comm_overflow``).
      worker_momentum: ``"none"`` (default) or ``"lion"``: each replica
        keeps a Lion momentum ``m`` of its own gradients and sends the signs
        of its Lion direction ``beta_1 * m + (1 - beta_1) * g`` (through
        the error-feedback memory and top-K below density 1; every sign at
        density 1, which is Distributed Lion with a majority vote, Liu et
        al. 2024); after the step ``m <- beta_2 * m + (1 - beta_2) * g``.
        The vote is then applied as Lion applies its sign, ``x <- x - lr *
        (vote + weight_decay * x)``, with the wrapped optimizer's learning
        rate (and schedule) and decoupled weight decay; that optimizer's own
        update rule (e.g. Adam's moments) is not used, and a log line says
        so once. The momentum is per-replica state, saved and resumed like
        the error-feedback memory.
      beta_1: Lion's interpolation weight of the momentum in the sent
        direction (default 0.9; used with ``worker_momentum="lion"``).
      beta_2: Lion's momentum decay (default 0.99).
      profile: the path of a calibration profile
        (:func:`tf_sparsesign.calibrate`, ``tf-sparsesign calibrate``) that
        ``"auto"`` predicts step times from (default None: documented
        defaults). A profile taken with another number of replicas is
        refused with an error. Not part of the settings fingerprint.
      adversary: **test/experiment hook only** (default None), e.g. a
        :class:`tf_sparsesign.experiments.Adversary` making chosen replicas
        send flipped, random or malformed messages. Not part of the
        settings fingerprint nor of saved configs."""


#: Why ``vote="weighted"`` warns (it stays so that saved optimizers load).
WEIGHTED_DEPRECATED = (
    "tf_sparsesign: vote='weighted' is deprecated: it does not defend "
    "against sign-flipping, colluding or alternating workers "
    "(docs/RESULTS.md); use vote='fd' for untrusted workers. It stays "
    "available so that optimizers saved with it load and resume.")


@dataclasses.dataclass(frozen=True)
class SparseSignConfig:
    """The settings of the sparse-sign aggregation (validated on creation).

    Attributes: see :data:`SETTINGS_DOC` (the same names and defaults).

    Example:

    >>> SparseSignConfig(density=0.001, wire="rice").k is None
    True
    >>> SparseSignConfig(wire="zip")
    Traceback (most recent call last):
    ...
    ValueError: wire must be one of ('int32', 'rice', 'packed', 'auto'), got 'zip'
    """

    density: policy.Density = 0.01
    k: int | None = None
    error_feedback: bool = True
    dense: bool = False
    shadow: bool = False
    on_invalid: str = "raise"
    wire: str = "int32"
    method: str = "sign_vote"
    vote: str = "plain"
    seed: int = 0
    aggregation: str = "allgather"
    downlink: str = "exact"
    shard_capacity: float = policy.DEFAULT_SHARD_CAPACITY
    worker_momentum: str = "none"
    beta_1: float = 0.9
    beta_2: float = 0.99
    profile: Any = None
    adversary: Any = None

    def __post_init__(self):
        if not self.dense:
            policy.validate(self.density, self.k)
        if self.dense and self.shadow is True:
            raise ValueError("shadow=True trains the dense baseline and "
                             "watches the sparse step with these settings; "
                             "dense=True has no sparse step to watch: set "
                             "one of the two")
        for name in ("error_feedback", "dense", "shadow"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got "
                                 f"{getattr(self, name)!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed,
                                                         numbers.Integral):
            raise ValueError(f"seed must be an int, got {self.seed!r}")
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {tuple(choices)}, "
                                 f"got {getattr(self, name)!r}")
        if self.vote == "weighted":
            warnings.warn(WEIGHTED_DEPRECATED, FutureWarning, stacklevel=3)
        registry.check_vote(self.vote, self.wire, self.aggregation)
        if self.wire not in ("int32", registry.AUTO) and \
                registry.sends_values(self.method):
            raise ValueError(f"wire={self.wire!r} codes positions and signs; "
                             f"it cannot carry method={self.method!r} "
                             "(values): use wire='int32'")
        registry.check_exchange(self.method, self.wire, self.aggregation)
        for name in ("beta_1", "beta_2"):
            beta = getattr(self, name)
            if isinstance(beta, bool) or not isinstance(
                    beta, numbers.Real) or not 0.0 <= beta < 1.0:
                raise ValueError(f"{name} must be a number in [0, 1), got "
                                 f"{beta!r}")
        if self.profile is not None and not isinstance(
                self.profile, (str, os.PathLike)):
            raise ValueError(f"profile must be the path of a calibration "
                             f"profile (tf_sparsesign.calibrate), got "
                             f"{self.profile!r}")
        capacity = self.shard_capacity
        if isinstance(capacity, bool) or not isinstance(
                capacity, numbers.Real) or not capacity >= 1.0:
            raise ValueError(f"shard_capacity must be a number >= 1 (bucket "
                             f"slots per K/M codes), got {capacity!r}")

    @classmethod
    def from_settings(cls, owner: str, density, settings: dict
                      ) -> "SparseSignConfig":
        """The config of ``owner(density, **settings)``; unknown names get
        an error listing the valid ones."""
        unknown = sorted(set(settings) - set(FIELDS))
        if unknown:
            raise TypeError(f"{owner} got unknown setting(s) {unknown}; the "
                            f"settings are {', '.join(FIELDS)}")
        return cls(density=density, **settings)

    def to_dict(self) -> dict:
        """The settings (without the experiment-only adversary)."""
        out = dataclasses.asdict(self)
        out.pop("adversary")
        return out

    def describe(self) -> str:
        """``name=value`` for every setting, for error messages."""
        return ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())

    def fingerprint(self, sizes: Sequence[int], ks: Sequence[int]) -> int:
        """A non-negative int32 every worker must agree on: the settings
        and the model's tensor sizes and K."""
        settings = self.to_dict()
        settings.pop("profile")  # where a worker reads it from may differ
        text = json.dumps([settings, list(sizes), list(ks)],
                          sort_keys=True)
        return zlib.crc32(text.encode()) & 0x7FFFFFFF


#: The settings, in order (the entry points' keyword arguments).
FIELDS = tuple(f.name for f in dataclasses.fields(SparseSignConfig))
#: The settings every worker must share (all but the experiment hook).
SHARED = tuple(name for name in FIELDS if name != "adversary")
#: The vote rules ``vote=`` accepts (one file each in
#: ``aggregation/combine/``).
VOTE_MODES = tuple(registry.VOTES)
#: Settings chosen from a fixed set, and the names each accepts.
CHOICES = {"on_invalid": ("raise", "drop"), "wire": registry.WIRES,
           "method": tuple(registry.METHODS), "vote": VOTE_MODES,
           "aggregation": registry.AGGREGATIONS, "downlink": policy.DOWNLINKS,
           "worker_momentum": tuple(registry.WORKER_MOMENTA)}


def mismatch_message(values, mine: int, config: SparseSignConfig) -> str:
    """Why workers disagree (built from the settings' own names)."""
    return ("tf_sparsesign: workers were started with different settings "
            f"or model shapes: settings fingerprints per replica {values}; "
            f"this worker (fingerprint {mine}) has {config.describe()}. "
            f"Start every worker with the same {', '.join(SHARED)} "
            "and the same model.")


def document(cls):
    """Puts :data:`SETTINGS_DOC` where a docstring says ``{{settings}}``."""
    cls.__doc__ = cls.__doc__.replace("{{settings}}", SETTINGS_DOC.strip(
        "\n").lstrip())
    return cls
