"""Starts N local workers of examples/multiworker/worker.py with TF_CONFIG.

    python examples/multiworker/launch.py --workers 3

Each worker gets the same cluster list (127.0.0.1 ports) and its own index;
all of them must start for training to begin. Exits with the first non-zero
worker status; kills the rest on Ctrl-C or after --timeout seconds.
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
    args = ap.parse_args()
    worker = Path(__file__).with_name("worker.py")
    status = 0
    try:
        with LocalCluster(args.workers,
                          lambda i: [sys.executable, str(worker)]) as cluster:
            for i in range(args.workers):
                print(f"worker {i}: TF_CONFIG="
                      f"{json.dumps(tf_config(cluster.hosts, i))}")
            codes = cluster.wait(args.timeout)
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
