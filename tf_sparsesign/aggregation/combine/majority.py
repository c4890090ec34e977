"""The plain majority vote (S3GD-MV, signSGD-MV): ``sign(sum_m s_m)``."""

from __future__ import annotations

from . import Stateless


class MajorityVote(Stateless):
    """Every row counts once; ties and unsent coordinates give 0."""

    def combine(self, codes, values, num_elements: int):
        return self.vote(codes, num_elements, None)
