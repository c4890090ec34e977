"""Starts N local workers of examples/multiworker/worker.py with TF_CONFIG.

    python examples/multiworker/launch.py --workers 3

Each worker gets the same cluster list (127.0.0.1 ports) and its own index;
all of them must start for training to begin. Exits with the first non-zero
worker status; kills the rest on Ctrl-C or after --timeout seconds.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()
    hosts = [f"127.0.0.1:{p}" for p in free_ports(args.workers)]
    worker = Path(__file__).with_name("worker.py")
    procs = []
    for i in range(args.workers):
        tf_config = {"cluster": {"worker": hosts},
                     "task": {"type": "worker", "index": i}}
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config),
                   TF_CPP_MIN_LOG_LEVEL="2")
        procs.append(subprocess.Popen([sys.executable, str(worker)], env=env))
        print(f"worker {i}: TF_CONFIG={json.dumps(tf_config)}")
    deadline = time.time() + args.timeout
    status = 0
    try:
        while any(p.poll() is None for p in procs):
            if time.time() > deadline:
                print("timeout: stopping workers", file=sys.stderr)
                status = 124
                break
            time.sleep(0.5)
        status = status or next((p.returncode for p in procs
                                 if p.returncode), 0)
    except KeyboardInterrupt:
        status = 130
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    sys.exit(status)


if __name__ == "__main__":
    main()
