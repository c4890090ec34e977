"""registry.py: names -> parts, chosen once; what each exchange can carry
decides which settings run together and what "auto" considers."""

import pytest

from tf_sparsesign.aggregation import registry
from tf_sparsesign.config import SparseSignConfig


def choose(one_host=True, m=8, **settings):
    return registry.choose(SparseSignConfig(**settings), False, 10**7,
                           10**5, m, m if one_host else 1)


def test_the_names_map_to_parts():
    parts = choose(density=0.01, wire="rice", vote="fd")
    assert parts == registry.Parts(registry.METHODS["sign_vote"],
                                   registry.CODECS["rice"],
                                   registry.VOTES["fd"], "rice", "allgather")


def test_density_one_sign_vote_is_signsgd_with_packed_signs():
    parts = registry.choose(SparseSignConfig(density=1.0, wire="rice"),
                            True, 100, 100, 4)
    assert (parts.select, parts.wire) == (registry.EVERY_SIGN, "packed")
    assert parts.combine == registry.PACKED_VOTES["plain"]


def test_auto_considers_only_exchanges_that_carry_the_message():
    assert choose(False, m=64, aggregation="auto").exchange == "sharded"
    assert choose(True, m=64, aggregation="auto").exchange == "allgather"
    for settings in (dict(method="topk_values"), dict(vote="fd"),
                     dict(wire="packed", density=0.5)):
        assert choose(False, m=64, aggregation="auto",
                      **settings).exchange == "allgather", settings


def test_what_an_exchange_cannot_carry_is_an_error():
    with pytest.raises(ValueError, match="votes signs; it cannot carry "
                                         "method='topk_values'"):
        SparseSignConfig(aggregation="sharded", method="topk_values")
    with pytest.raises(ValueError, match="needs codes"):
        SparseSignConfig(aggregation="sharded", wire="packed")
    with pytest.raises(ValueError, match="needs codes"):
        registry.choose(SparseSignConfig(density=1.0,
                                         aggregation="sharded"),
                        True, 100, 100, 4)


def test_message_kinds():
    assert registry.message_kind("topk_values", "int32") == "values"
    assert registry.message_kind("sign_vote", "packed") == "packed"
    assert registry.message_kind("random_k", "rice") == "codes"
