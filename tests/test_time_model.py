"""The time model (policy.timing, policy.profile, policy.ranking): the
arithmetic against hand-computed cases, the profile's JSON and its checks,
and the ranking ``auto`` reads. No TensorFlow."""

import dataclasses
import json

import pytest

from tf_sparsesign import policy
from tf_sparsesign.policy import (Fit, Link, Option, Part, Profile,
                                  ProfileMismatch, Workload)


def profile(**changes) -> Profile:
    """A hand-made profile: every collective 1 ms + bytes / 100 MB/s, every
    compute part 1 ms + 1 ns per work unit, forward+backward 50 ms."""
    base = dict(
        num_replicas=4, hosts=("h0:1", "h1:1", "h2:1", "h3:1"),
        devices=("CPU:0",) * 4, tf_version="2.21.0",
        taken="2026-01-01T00:00:00+00:00",
        collectives={k: Fit(floor=0.0005, a=0.001, b=1e8)
                     for k in policy.profile.KINDS},
        compute={k: Part(0.001, 1e-9)
                 for k in policy.timing_defaults.DEFAULT_COMPUTE},
        forward_backward=0.05, sizes=(1000, 10), total_k=12)
    base.update(changes)
    return Profile(**base)


def test_fit_is_a_line_with_a_floor():
    fit = Fit(floor=0.002, a=0.001, b=1e6)
    assert fit.seconds(0) == 0.002                 # the floor
    assert fit.seconds(1e6) == pytest.approx(1.001)
    assert Part(0.001, 2e-9).seconds(1e6) == pytest.approx(0.003)


def test_fit_collective_recovers_a_line_and_the_smallest_time():
    a, b = 1e-3, 1e8
    points = [(x, a + x / b) for x in (1e3, 1e6, 1e7)]
    fit = policy.fit_collective(points)
    assert fit.a == pytest.approx(a, rel=1e-6)
    assert fit.b == pytest.approx(b, rel=1e-6)
    assert fit.floor == pytest.approx(a + 1e3 / b)
    # Larger is not slower: a flat line, the relative-error-weighted mean.
    flat = policy.fit_collective([(4, 0.003), (1e6, 0.002)])
    mean = (1 / 0.003 + 1 / 0.002) / (1 / 0.003 ** 2 + 1 / 0.002 ** 2)
    assert flat.a == pytest.approx(mean) and flat.b > 1e12
    with pytest.raises(ValueError, match=">= 2 sizes"):
        policy.fit_collective([(4, 0.001)])


def test_fit_part_through_two_points_never_negative():
    part = policy.fit_part((1000, 0.002), (1_001_000, 0.012))
    assert part.c1 == pytest.approx(1e-8) and part.c0 == pytest.approx(
        0.00199)
    noisy = policy.fit_part((1000, 0.005), (1e6, 0.004))
    assert noisy == Part(0.004, 0.0)


def test_link_model_by_hand():
    link = Link(bandwidth=1e9, latency=1e-3)       # 1.25e8 bytes/s
    # Ring all-gather: 3 rounds of (1 ms + 1 MB / 125 MB/s).
    assert link.seconds("all_gather", 1e6, 4) == pytest.approx(0.027)
    # Ring all-reduce of 8 MB: 6 rounds of (1 ms + 2 MB / 125 MB/s).
    assert link.seconds("all_reduce", 8e6, 4) == pytest.approx(0.102)
    # 40 MB: 10 MB per rank, 3 chunks of <= 4 MiB: 3 calls a round.
    assert link.seconds("all_reduce", 40e6, 4) == pytest.approx(
        6 * (3e-3 + 10e6 / 1.25e8))
    # All-to-all: one round, 3 of the 4 buckets cross the link.
    assert link.seconds("all_to_all", 4e6, 4) == pytest.approx(0.025)
    assert link.seconds("all_gather", 1e6, 1) == 0.0


def test_collectives_of_each_exchange():
    n, k, m = 100_000, 1_000, 4
    assert policy.collectives_of(policy.timing.DENSE, n, k, m) == [
        ("all_reduce", 400_000)]
    assert policy.collectives_of(Option("allgather", "int32"), n, k, m) == [
        ("all_gather", 4 * 1001)]
    # ReplicaContext.all_gather with unknown shapes: a shape round first.
    assert policy.collectives_of(Option("allgather", "int32"), n, k, m,
                                 static_shapes=False)[0] == ("all_gather", 4)
    sharded = policy.collectives_of(Option("sharded", "rice"), n, k, m)
    assert [kind for kind, _ in sharded] == ["all_to_all", "all_gather",
                                             "all_gather"]
    assert sharded[1] == ("all_gather", 4)        # the Rice lengths
    topk = policy.collectives_of(Option("sharded", "rice", "topk"), n, k, m)
    assert [kind for kind, _ in topk] == ["all_to_all", "all_gather"]
    learning = policy.collectives_of(Option("sharded", "int32"), n, k, m,
                                     learning_vote=True)
    assert learning[-1] == ("all_reduce", 16)


@pytest.mark.parametrize("option", [o for o in policy.OPTIONS
                                    if o.exchange != "dense"])
def test_collective_bytes_are_the_byte_models(option):
    n, k, m = 1_000_000, 10_000, 8
    calls = policy.collectives_of(option, n, k, m)
    own = policy.exchange_bytes(n, k, m, option.wire, option.exchange,
                                option.downlink)["message"]
    data = [b for kind, b in calls if b > 4]       # not the lengths round
    assert sum(data) == own


def test_work_units_by_hand():
    n, k, m = 1000, 10, 4
    touched = 1000 * (1 - 0.99 ** 4)
    assert policy.work_units("check_finite", n, k, m) == 1000
    assert policy.work_units("message/allgather/rice", n, k, m) == 10
    assert policy.work_units("host_step/allgather/int32", n, k, m) == 40
    assert policy.work_units("host_step/allgather/packed", n, k, m) == 4000
    assert policy.work_units("host_step/sharded/rice", n, k, m) == \
        pytest.approx(touched)
    assert policy.work_units("apply", n, k, m) == pytest.approx(touched)
    with pytest.raises(ValueError, match="unknown compute part"):
        policy.work_units("teleport", n, k, m)


def test_predict_by_hand_from_a_profile():
    n, k, m = 1010, 12, 4
    (pred,) = policy.predict(Workload(n, k, m), ["allgather/int32"],
                             profile())
    touched = n * (1 - (1 - k / n) ** m)
    compute = {"check_finite": n, "encode/allgather": n,
               "message/allgather/int32": k,
               "host_step/allgather/int32": m * k, "apply": touched}
    assert pred.parts["check_finite"] == pytest.approx(0.001 + 1e-9 * n)
    comm = 0.001 + 4 * 13 / 1e8                    # one 13-word message
    expected = 0.05 + sum(0.001 + 1e-9 * w for w in compute.values()) + comm
    assert pred.seconds == pytest.approx(expected)
    assert pred.comm == pytest.approx(comm) and pred.notes == ()
    (dense,) = policy.predict(Workload(n, k, m, forward_backward=0.2),
                              ["dense"], profile())
    assert dense.seconds == pytest.approx(
        0.2 + 0.001 + 1e-9 * n + 0.001 + 4 * n / 1e8)


def test_predict_says_what_came_from_defaults():
    (pred,) = policy.predict(Workload(1000, 10, 4), ["sharded/rice"])
    assert any("no profile" in note for note in pred.notes)
    assert any("forward+backward unknown" in note for note in pred.notes)
    partial = profile(compute={"check_finite": Part(0.0, 0.0)})
    (pred,) = policy.predict(Workload(1000, 10, 4), ["allgather/rice"],
                             partial)
    assert "encode/allgather: not in the profile, default" in pred.notes


def test_profile_round_trips_through_json(tmp_path):
    p = profile(points={"all_gather": [[4, 0.001], [1024, 0.002]]},
                stages={"compute": 1.5})
    assert Profile.from_json(p.to_json()) == p
    p.save(tmp_path / "p.json")
    assert policy.load_profile(tmp_path / "p.json") == p
    assert [f.name for f in tmp_path.iterdir()] == ["p.json"]  # no temp


def test_profile_from_another_m_or_tensorflow_is_refused():
    p = profile()
    p.check(num_replicas=4, tf_version="2.21.0")
    with pytest.raises(ProfileMismatch, match="taken with M = 4 .* M = 8"):
        p.check(num_replicas=8)
    with pytest.raises(ProfileMismatch, match="TensorFlow 2.21.0.*2.22.0"):
        p.check(tf_version="2.22.0")
    with pytest.raises(ProfileMismatch, match="M = 4"):
        policy.predict(Workload(1000, 10, 8), ["dense"], p)


def test_malformed_profiles_say_what_is_wrong():
    good = json.loads(profile().to_json())
    with pytest.raises(ValueError, match="format 1"):
        Profile.from_json(json.dumps({**good, "format": 99}))
    with pytest.raises(ValueError, match=r"missing \['tf_version'\]"):
        Profile.from_json(json.dumps({k: v for k, v in good.items()
                                      if k != "tf_version"}))
    bad = dict(good, collectives={**good["collectives"],
                                  "all_gather": {"floor": 0, "a": -1,
                                                 "b": 1}})
    with pytest.raises(ValueError, match="negative"):
        Profile.from_json(json.dumps(bad))
    with pytest.raises(ValueError, match="could not read"):
        Profile.from_json("{not json")


def test_rank_orders_by_time_and_knows_its_error_band():
    slow_rice = profile(compute={
        **profile().compute, "host_step/allgather/rice": Part(0.02, 0.0)})
    work = Workload(1010, 12, 4)
    ranking = policy.rank(["allgather/rice", "allgather/int32"], work,
                          slow_rice, error=0.15)
    assert [p.option.name for p in ranking.predictions] == [
        "allgather/int32", "allgather/rice"]
    t1, t2 = (p.seconds for p in ranking.predictions)
    assert 1.0 < t2 / t1 < 1.15 / 0.85               # within the band
    assert ranking.tied and len(ranking.contenders) == 2
    sure = policy.rank(["allgather/rice", "allgather/int32"], work,
                       slow_rice, error=0.01)
    assert not sure.tied and sure.contenders == (sure.best,)


def test_rank_refuses_options_that_change_the_algorithm():
    work = Workload(1000, 10, 4)
    with pytest.raises(ValueError, match="same update.*dense"):
        policy.rank(["allgather/int32", "dense"], work)
    with pytest.raises(ValueError, match="sharded-topk/rice"):
        policy.rank(["sharded-topk/rice"], work)
    with pytest.raises(ValueError, match="unknown option"):
        policy.rank(["allgather/zip"], work)
    with pytest.raises(ValueError, match="at least one"):
        policy.rank([], work)


def test_ties_keep_the_candidates_order():
    same = profile(compute={k: Part(0.0, 0.0) for k in
                            policy.timing_defaults.DEFAULT_COMPUTE},
                   collectives={k: Fit(0.001, 0.0, 1e18)
                                for k in policy.profile.KINDS})
    order = ["allgather/rice", "allgather/int32"]
    ranking = policy.rank(order, Workload(1000, 10, 4), same)
    assert [p.option.name for p in ranking.predictions] == order
    assert dataclasses.replace(ranking, error=0.0).tied


def test_fit_part_from_one_point_is_proportional():
    assert policy.fit_part((1e6, 0.004)) == Part(0.0, 4e-9)
    assert policy.fit_part((0, 0.004)) == Part(0.004, 0.0)
    with pytest.raises(ValueError, match="1 or 2"):
        policy.fit_part((1, 1), (2, 2), (3, 3))
