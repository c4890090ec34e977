"""Vote rules (``vote=``): exact semantics against NumPy, and what each rule
does with a sign flipper, on small hand-made rows."""

import pytest

import tf_sparsesign
from tf_sparsesign import config as config_lib
from tf_sparsesign.aggregation import registry


def test_vote_modes_are_the_registry_and_public():
    assert tf_sparsesign.VOTE_MODES == tuple(registry.VOTES)
    assert tf_sparsesign.VOTE_MODES == ("plain", "weighted", "fd")
    for mode in ("plain", "fd"):
        assert tf_sparsesign.SparseSignConfig(vote=mode).vote == mode
    with pytest.warns(FutureWarning, match="vote='weighted' is deprecated"):
        assert tf_sparsesign.SparseSignConfig(vote="weighted").vote == \
            "weighted"
    with pytest.raises(ValueError, match=r"vote must be one of \("):
        tf_sparsesign.SparseSignConfig(vote="fv")
    assert '"fd"' in config_lib.SETTINGS_DOC


def test_fd_needs_codes_and_the_allgather_exchange():
    config = tf_sparsesign.SparseSignConfig
    with pytest.raises(ValueError, match=r"vote='fd' cannot read packed rows "
                       r"\(wire='packed'.*one of \('plain', 'weighted'\)"):
        config(vote="fd", wire="packed")
    with pytest.raises(ValueError, match=r"vote='fd' weighs each row.*needs "
                       r"aggregation='allgather' or 'auto', got "
                       r"aggregation='sharded'"):
        config(vote="fd", aggregation="sharded")
    # signSGD-MV (density 1) always sends packed signs: an error when built.
    with pytest.raises(ValueError, match="vote='fd' cannot read packed rows"):
        registry.choose(config(density=1.0, vote="fd"), True, 100, 100, 4)
    # "auto" across hosts always all-gathers for fd; for plain it weighs
    # both exchanges (the time model's pick)
    for vote in ("plain", "fd"):
        choice = registry.decide(config(density=0.001, vote=vote,
                                        aggregation="auto"),
                                 False, 10 ** 8, 10 ** 5, 64, 8)
        if vote == "fd":
            assert {p.exchange for p in choice.parts} == {"allgather"}
        assert {p.combine for p in choice.parts} == {registry.VOTES[vote]}
    best = tf_sparsesign.policy.rank(
        ["allgather/int32", "sharded/int32"],
        tf_sparsesign.policy.Workload(10 ** 8, 10 ** 5, 64,
                                      learning_vote=False)).best
    assert registry.choose(config(density=0.001, aggregation="auto"),
                           False, 10 ** 8, 10 ** 5, 64,
                           8).exchange == best.option.exchange
