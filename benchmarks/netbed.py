"""Test hosts for the network benchmarks: one network namespace per worker
on a shaped bridge (:class:`NamespaceTestbed`, root), or 127.0.0.1
(:class:`LoopbackTestbed`), with the interface counters that say what
crossed each worker's link. Used by ``network.py`` and ``timemodel.py``.

Namespaces are named ``tfss<pid>...``: worker ``i`` gets ``eth0`` =
198.18.0.<i+1>/24 (the benchmarking range, RFC 2544), a veth whose peer
is a port of a bridge in its own namespace; both directions of every link
are shaped with ``tc tbf`` (plus ``netem`` with a delay, where the kernel
has it). The bridge namespace has no uplink, no route and no NAT: no
packet can leave. :meth:`NamespaceTestbed.remove` deletes everything with
the prefix (idempotent, safe from signal handlers).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from tf_sparsesign.experiments.cluster import free_ports

PREFIX = f"tfss{os.getpid()}"
SUBNET = "198.18.0"            # 198.18.0.0/15 is reserved for benchmarking
PORT = 23456                   # each worker has its own address: one port


def sh(*cmd: str, check: bool = True) -> str:
    """Runs a command; a failure names the command and its stderr."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed ({proc.returncode}): "
                           f"{proc.stderr.strip()}")
    return proc.stdout


def namespaces_with_prefix(prefix: str) -> list[str]:
    """The network namespaces whose name starts with ``prefix``."""
    out = sh("ip", "netns", "list", check=False)
    return [line.split()[0] for line in out.splitlines()
            if line.split() and line.split()[0].startswith(prefix)]


class NamespaceTestbed:
    """M worker namespaces on one bridge (in its own namespace), every link
    shaped in both directions. Use as a context manager."""

    def __init__(self, workers: int, bandwidth: str, delay: str | None,
                 prefix: str = PREFIX):
        self.workers = workers
        self.bandwidth = bandwidth
        self.delay = delay
        self.prefix = prefix
        self.bridge_ns = f"{prefix}br"
        self.worker_ns = [f"{prefix}w{i}" for i in range(workers)]
        self.addresses = [f"{SUBNET}.{i + 1}" for i in range(workers)]

    @staticmethod
    def check_allowed() -> None:
        """SystemExit unless this process may create namespaces."""
        if os.geteuid() != 0:
            raise SystemExit("test hosts: need root for ip netns and tc; "
                             "use --loopback to run without namespaces")
        for tool in ("ip", "tc"):
            if shutil.which(tool) is None:
                raise SystemExit(f"test hosts: `{tool}` not found (iproute2)"
                                 "; use --loopback")

    def __enter__(self):
        self.check_allowed()
        try:
            self._create()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc):
        self.remove()

    def _create(self) -> None:
        sh("ip", "netns", "add", self.bridge_ns)
        self._quiet_namespace(self.bridge_ns)
        sh("ip", "-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.bridge_ns, "link", "set", "br0", "up")
        for i, (ns, addr) in enumerate(zip(self.worker_ns, self.addresses)):
            sh("ip", "netns", "add", ns)
            self._quiet_namespace(ns)
            port = f"v{i}"
            # Created inside the namespaces directly: nothing ever appears
            # in the root namespace.
            sh("ip", "-n", self.bridge_ns, "link", "add", port, "type",
               "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", self.bridge_ns, "link", "set", port, "master",
               "br0")
            sh("ip", "-n", self.bridge_ns, "link", "set", port, "up")
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            self._shape(ns, "eth0")               # worker -> bridge (up)
            self._shape(self.bridge_ns, port)     # bridge -> worker (down)

    @staticmethod
    def _quiet_namespace(ns: str) -> None:
        """No IPv6 (router solicitations, DAD) on our links: only the
        workers' own traffic is counted. Best effort."""
        sh("ip", "netns", "exec", ns, "sysctl", "-qw",
           "net.ipv6.conf.all.disable_ipv6=1", check=False)
        sh("ip", "netns", "exec", ns, "sysctl", "-qw",
           "net.ipv6.conf.default.disable_ipv6=1", check=False)

    def _shape(self, ns: str, dev: str) -> None:
        """tbf at the link rate (burst: 10 ms of traffic, at least 32 KiB,
        so GSO segments pass; queue: 100 ms), behind netem if --delay."""
        rate_bps = parse_rate(self.bandwidth)
        burst = max(32 * 1024, rate_bps // 8 // 100)
        tbf = ["tbf", "rate", self.bandwidth, "burst", str(burst),
               "latency", "100ms"]
        if self.delay:
            try:
                sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev",
                   dev, "root", "handle", "1:", "netem", "delay",
                   self.delay, "limit", "100000")
            except RuntimeError as exc:
                raise RuntimeError(
                    f"--delay needs the netem qdisc (kernel module "
                    f"sch_netem), which this kernel refused: {exc}") from exc
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev,
               "parent", "1:1", "handle", "10:", *tbf)
        else:
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev,
               "root", "handle", "1:", *tbf)

    def remove(self) -> None:
        """Deletes every namespace with our prefix (their veths, bridge and
        qdiscs go with them). Idempotent, safe from signal handlers."""
        for ns in namespaces_with_prefix(self.prefix):
            sh("ip", "netns", "del", ns, check=False)

    def launcher(self, index: int) -> list[str]:
        """What runs a command inside worker ``index``'s namespace."""
        return ["ip", "netns", "exec", self.worker_ns[index]]

    def hosts(self) -> list[str]:
        """The workers' ``address:port``."""
        return [f"{addr}:{PORT}" for addr in self.addresses]

    def counters(self) -> list[tuple[int, int]]:
        """(tx_bytes, rx_bytes) of each worker's eth0."""
        return [link_bytes(["-n", ns], "eth0") for ns in self.worker_ns]

    def describe(self) -> str:
        """One line for the output."""
        delay = f", netem delay {self.delay}" if self.delay else ""
        return (f"{self.workers} namespaces on a bridge, tbf {self.bandwidth}"
                f" each way per link{delay}")


class LoopbackTestbed:
    """The same workers on 127.0.0.1: no root, no shaping, one shared lo."""

    def __init__(self, workers: int):
        self.workers = workers
        self.bandwidth, self.delay = "loopback", None
        self._ports = free_ports(workers)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def remove(self) -> None:
        pass

    def launcher(self, index: int) -> list[str]:
        """Nothing: the workers run on this host."""
        return []

    def hosts(self) -> list[str]:
        """The workers' ``127.0.0.1:port``."""
        return [f"127.0.0.1:{p}" for p in self._ports]

    def counters(self) -> list[tuple[int, int]]:
        """lo is shared: every worker gets 1/M of its counters."""
        tx, rx = link_bytes([], "lo")
        return [(tx // self.workers, rx // self.workers)] * self.workers

    def describe(self) -> str:
        """One line for the output."""
        return f"{self.workers} workers on 127.0.0.1 (unshaped, shared lo)"


def link_bytes(netns_args: list[str], dev: str) -> tuple[int, int]:
    """``(tx_bytes, rx_bytes)`` of ``dev`` (in a namespace with
    ``["-n", ns]``)."""
    out = sh("ip", *netns_args, "-j", "-s", "link", "show", "dev", dev)
    stats = json.loads(out)[0]["stats64"]
    return int(stats["tx"]["bytes"]), int(stats["rx"]["bytes"])


def parse_rate(rate: str) -> int:
    """tc rate ('100mbit', '1gbit', '500kbit') in bits per second."""
    units = {"gbit": 10**9, "mbit": 10**6, "kbit": 10**3, "bit": 1}
    for unit, scale in units.items():
        if rate.lower().endswith(unit):
            return int(float(rate[:-len(unit)]) * scale)
    raise ValueError(f"--bandwidth: expected e.g. 100mbit, got {rate!r}")


def testbed(workers: int, link: str, delay: str | None = None):
    """The test hosts of ``link``: ``"loopback"`` (127.0.0.1, unshaped) or
    a tc rate such as ``"100mbit"`` (namespaces, root)."""
    if link == "loopback":
        return LoopbackTestbed(workers)
    parse_rate(link)  # a clear error before any namespace exists
    return NamespaceTestbed(workers, link, delay)
