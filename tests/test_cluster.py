"""The local-cluster helper: quiet workers, their logs, failure reports."""

import io
import sys

import pytest

from tf_sparsesign.experiments.cluster import LocalCluster

#: A stand-in worker: prints its index, worker 2 fails.
WORKER = ("import json, os, sys; "
          "i = json.loads(os.environ['TF_CONFIG'])['task']['index']; "
          "print('progress of worker', i, flush=True); "
          "print('oops', i, file=sys.stderr) if i == 2 else None; "
          "sys.exit(3 if i == 2 else 0)")


def run(capfd, **kw):
    with LocalCluster(3, lambda i: [sys.executable, "-c", WORKER],
                      **kw) as cluster:
        codes = cluster.wait(timeout=60)
        report = io.StringIO()
        cluster.report_failures(codes, file=report)
    return codes, capfd.readouterr().out, report.getvalue(), cluster


def test_quiet_cluster_prints_the_chief_only_and_reports_failures(
        capfd, tmp_path):
    codes, out, report, cluster = run(capfd, quiet=True, log_dir=tmp_path)
    assert codes == [0, 0, 3]
    assert out.splitlines() == ["progress of worker 0"]
    assert cluster.log_path(0) is None
    assert (tmp_path / "worker1.log").read_text() == \
        "progress of worker 1\n"
    # Only the failed worker's log is shown, with its stderr.
    assert "worker 2 (exit 3)" in report and "oops 2" in report
    assert "worker 1" not in report
    assert (tmp_path / "worker2.log").exists()  # a given log_dir is kept


def test_own_log_folder_is_removed_after_a_clean_run(capfd):
    with LocalCluster(2, lambda i: [sys.executable, "-c", "print(1)"],
                      quiet=True) as cluster:
        assert cluster.wait(timeout=60) == [0, 0]
        folder = cluster.log_dir
        assert (folder / "worker1.log").exists()
    assert not folder.exists()


def test_verbose_cluster_lets_every_worker_print(capfd):
    codes, out, report, _ = run(capfd)
    assert sorted(out.splitlines()) == [f"progress of worker {i}"
                                        for i in range(3)]
    assert codes == [0, 0, 3] and report == ""


def test_quiet_and_output_for_are_exclusive():
    with pytest.raises(ValueError, match="not both"):
        LocalCluster(2, lambda i: ["true"], output_for=lambda i: None,
                     quiet=True)
