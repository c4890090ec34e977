"""Starts N local workers of examples/multiworker/worker.py with TF_CONFIG.

    python examples/multiworker/launch.py --workers 3
    python examples/multiworker/launch.py --workers 3 --verbose-workers

Each worker gets the same cluster list (127.0.0.1 ports) and its own index;
all of them must start for training to begin. Only the chief (worker 0)
prints its progress here; the others write to log files (``--log-dir``,
default a temporary folder removed after a clean run), and a failing
worker's log end is shown. ``--verbose-workers`` lets every worker print
here instead. Exits with the first non-zero worker status; kills the rest on
Ctrl-C or after --timeout seconds.
"""

import argparse
import json
import sys
from pathlib import Path

from tf_sparsesign.experiments.cluster import LocalCluster, tf_config


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--verbose-workers", action="store_true",
                    help="every worker prints to this terminal (default: "
                    "only the chief, worker 0)")
    ap.add_argument("--log-dir", default=None,
                    help="where the other workers' logs go (default: a "
                    "temporary folder, removed after a clean run)")
    args = ap.parse_args()
    worker = Path(__file__).with_name("worker.py")
    status = 0
    try:
        with LocalCluster(args.workers,
                          lambda i: [sys.executable, str(worker)],
                          quiet=not args.verbose_workers,
                          log_dir=args.log_dir) as cluster:
            for i in range(args.workers):
                where = (f", log {cluster.log_path(i)}"
                         if cluster.log_path(i) else "")
                print(f"worker {i}: TF_CONFIG="
                      f"{json.dumps(tf_config(cluster.hosts, i))}{where}",
                      flush=True)
            codes = cluster.wait(args.timeout)
            cluster.report_failures(codes)
        if None in codes:
            print("timeout: stopped the workers", file=sys.stderr)
            status = 124
        else:
            status = next((c for c in codes if c), 0)
    except KeyboardInterrupt:
        status = 130
    sys.exit(status)


if __name__ == "__main__":
    main()
