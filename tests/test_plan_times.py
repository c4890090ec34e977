"""``tf-sparsesign plan``'s time section: from a profile (``--profile``)
or from defaults, and a profile of another cluster refused."""

import dataclasses

import pytest

from tf_sparsesign import policy
from tf_sparsesign import __main__ as cli
from tf_sparsesign.experiments import plan_times
from test_time_model import profile

PLAN = ["plan", "--params", "1010", "--workers", "4", "--densities",
        "0.01"]


def rows(out: str) -> dict:
    """``{option: line}`` of the time table."""
    table = out.split("Predicted step time")[1]
    return {line.split()[1]: line for line in table.splitlines()
            if line.startswith("0.01 ")}


def test_plan_with_a_profile_prints_its_predictions(tmp_path, capsys):
    p = dataclasses.replace(profile(),
                            tf_version=plan_times.installed_tf_version())
    p.save(tmp_path / "p.json")
    assert cli.main(PLAN + ["--profile", str(tmp_path / "p.json")]) == 0
    out = capsys.readouterr().out
    assert f"profile taken {p.taken} (M = 4" in out
    table = rows(out)
    assert set(table) == set(plan_times.SHOWN)
    k = sum(policy.allocate([1010], 0.01))
    for name in ("dense", "allgather/int32", "sharded/rice"):
        (pred,) = policy.predict(policy.Workload(1010, k, 4), [name], p)
        assert f"{pred.seconds * 1e3:.1f} ms" in table[name]
    assert table["sharded/rice"].split()[-1] == "3"   # collective calls
    assert sum("<- fastest" in line for line in table.values()) == 1
    assert "no profile" not in out


def test_plan_without_a_profile_says_it_uses_defaults(capsys):
    assert cli.main(PLAN + ["--bandwidth", "10Gbit/s",
                            "--step-compute", "20ms"]) == 0
    out = capsys.readouterr().out
    assert "no profile: documented defaults (link 10 Gbit/s" in out
    assert "20.0 ms" in rows(out)["allgather/rice"]


@pytest.mark.parametrize("change, message", [
    (dict(num_replicas=8), "taken with M = 8 .* the job has M = 4"),
    (dict(tf_version="1.0.0"), "TensorFlow 1.0.0, this process runs")])
def test_plan_refuses_a_profile_of_another_cluster(tmp_path, capsys, change,
                                                   message):
    p = dataclasses.replace(profile(), **{
        "tf_version": plan_times.installed_tf_version(), **change})
    p.save(tmp_path / "p.json")
    assert cli.main(PLAN + ["--profile", str(tmp_path / "p.json")]) == 2
    assert capsys.readouterr().err.startswith("plan: --profile")
    with pytest.raises(policy.ProfileMismatch, match=message):
        plan_times.load_checked(tmp_path / "p.json", 4)


def test_plan_says_when_the_profile_file_is_not_one(tmp_path, capsys):
    (tmp_path / "p.json").write_text("[]")
    assert cli.main(PLAN + ["--profile", str(tmp_path / "p.json")]) == 2
    assert "not a tf_sparsesign profile" in capsys.readouterr().err
