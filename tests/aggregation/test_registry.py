"""registry.py: names -> parts, chosen once; what each exchange can carry
decides which settings run together and what "auto" considers."""

import pytest

from tf_sparsesign import policy
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


def decide(one_host=True, m=8, profile=None, **settings):
    return registry.decide(SparseSignConfig(**settings), False, 10**7,
                           10**5, m, m if one_host else 1, profile)


def test_auto_considers_only_exchanges_that_carry_the_message():
    for settings in (dict(method="topk_values"), dict(vote="fd"),
                     dict(wire="packed", density=0.5)):
        for m in (2, 64):
            names = decide(False, m=m, aggregation="auto", **settings).names
            assert all(n.startswith("allgather/") for n in names), settings
    names = decide(False, m=64, aggregation="auto", wire="auto",
                   method="topk_values").names
    assert names == ("allgather/int32",)  # values: only int32 carries them


def test_auto_takes_the_time_models_fastest_and_keeps_its_ties():
    options = ["allgather/int32", "sharded/int32", "allgather/rice",
               "sharded/rice", "allgather/packed"]
    for m in (2, 8, 64):
        ranking = policy.rank(options, policy.Workload(10**7, 10**5, m))
        choice = decide(False, m=m, aggregation="auto", wire="auto")
        assert choice.names[0] == ranking.best.option.name
        want = [p.option.name for p in ranking.contenders
                if (p.option.wire == "packed") == (ranking.best.option.wire
                                                    == "packed")]
        assert list(choice.names) == want  # timed when more than one
        assert choice.predicted == tuple(
            p.seconds for p in ranking.predictions if p.option.name in want)
        assert len({p.combine for p in choice.parts}) == 1


def test_auto_on_one_host_ranks_by_compute_and_never_times():
    choice = decide(True, m=4, aggregation="auto", wire="auto")
    assert len(choice.parts) == 1
    best = policy.rank(["allgather/int32", "sharded/int32", "allgather/rice",
                        "sharded/rice", "allgather/packed"],
                       policy.Workload(10**7, 10**5, 4),
                       link=registry.ONE_HOST_LINK).best.option.name
    assert choice.names == (best,)


def test_an_explicit_setting_is_never_overridden():
    for aggregation in ("allgather", "sharded"):
        for wire in ("int32", "rice"):
            choice = decide(False, m=64, aggregation=aggregation, wire=wire)
            assert choice.names == (f"{aggregation}/{wire}",)
            assert choice.predicted == ()
    # half explicit: the other half is chosen among what fits it
    assert all(n.endswith("/rice") for n in decide(
        False, m=64, aggregation="auto", wire="rice").names)
    assert all(n.startswith("sharded/") for n in decide(
        False, m=64, aggregation="sharded", wire="auto").names)


def test_a_profile_for_another_number_of_replicas_is_refused():
    profile = policy.Profile(
        num_replicas=4, hosts=("h0:1",) * 4, devices=("CPU:0",) * 4,
        tf_version="2.21.0", taken="2026-01-01T00:00:00+00:00",
        collectives={k: policy.Fit(floor=0.0005, a=0.001, b=1e8)
                     for k in policy.profile.KINDS},
        compute={}, forward_backward=0.05, sizes=(1000, 10), total_k=12)
    with pytest.raises(policy.ProfileMismatch, match="M = 4 .* M = 8"):
        decide(False, m=8, aggregation="auto", profile=profile)


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
