"""The local-cluster helper: quiet workers, their logs, failure reports."""

import io
import os
import sys
import time

import pytest

from tf_sparsesign.experiments.cluster import LocalCluster, WorkerFailed

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


def test_given_hosts_prefix_and_env_reach_the_workers(capfd, tmp_path):
    code = ("import json, os, sys; c = json.loads(os.environ['TF_CONFIG']); "
            "print(sys.argv[1], c['cluster']['worker'][c['task']['index']],"
            " os.environ['EXTRA'])")
    hosts = ["10.0.0.1:7", "10.0.0.2:7"]
    # The prefix is a command that runs the rest (here: env, no change).
    with LocalCluster(2, lambda i: [sys.executable, "-c", code, f"w{i}"],
                      hosts=hosts, prefix_for=lambda i: ["env"],
                      env={"EXTRA": "x"}) as cluster:
        assert cluster.hosts == hosts
        assert cluster.wait(timeout=60) == [0, 0]
    assert sorted(capfd.readouterr().out.splitlines()) == [
        "w0 10.0.0.1:7 x", "w1 10.0.0.2:7 x"]
    with pytest.raises(ValueError, match="2 workers need 2 hosts"):
        LocalCluster(2, lambda i: ["true"], hosts=["a:1"])


def test_new_session_kills_what_a_worker_started(tmp_path):
    pidfile = tmp_path / "child"
    code = ("import subprocess, sys; p = subprocess.Popen([sys.executable, "
            "'-c', 'import time; time.sleep(300)']); "
            f"open({str(pidfile)!r}, 'w').write(str(p.pid)); "
            "p.wait()")
    with LocalCluster(1, lambda i: [sys.executable, "-c", code],
                      new_session=True) as cluster:
        cluster.wait_until(pidfile.exists, 60, "the child")
        child = int(pidfile.read_text())
        assert cluster.wait(timeout=0.5) == [None]    # killed, group too
    with pytest.raises(ProcessLookupError):
        for _ in range(100):   # reaped by init shortly after the kill
            os.kill(child, 0)
            time.sleep(0.05)


def test_waiting_fails_fast_when_a_worker_dies(tmp_path):
    code = "import sys; print('broken', flush=True); sys.exit(5)"
    with LocalCluster(2, lambda i: [sys.executable, "-c", code if i else
                                    "import time; time.sleep(60)"],
                      quiet=True, log_dir=tmp_path, log_chief=True,
                      new_session=True) as cluster:
        start = time.monotonic()
        with pytest.raises(WorkerFailed, match="worker 1 exited .5. "
                           "before the files:\nbroken"):
            cluster.wait_until(lambda: False, 60, "the files")
        assert time.monotonic() - start < 30
        assert cluster.log_path(0) == tmp_path / "worker0.log"
        with pytest.raises(TimeoutError, match="0.2 s passed"):
            cluster.wait_until(lambda: False, 0.2, "nothing",
                               finished=lambda i: True)
