"""The plain majority vote (S3GD-MV, signSGD-MV): ``sign(sum_m s_m)``."""

from __future__ import annotations

from . import vote


class MajorityVote:
    """Every row counts once; ties and unsent coordinates give 0."""

    def __init__(self, state, num_replicas: int):
        del state, num_replicas  # stateless

    def combine(self, codes, values, num_elements: int, on_invalid: str):
        return vote(codes, num_elements, None, on_invalid)
