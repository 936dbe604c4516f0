"""The harness's network: a hub namespace (the harness, its stand-in destinations and its
WebSocket clients live there), a database namespace and one namespace per node, each joined
to the hub by a veth pair. Nothing is routed through the hub: nodes talk to addresses of the
hub only (the per-node PostgreSQL proxies, the stand-ins), so the machine's own namespace and
routes are never touched.

Partitions are policy rules with the ``blackhole`` action (packets silently dropped, as on a
cut link), placed before the ``local`` table lookup so they also catch packets for the hub's
own addresses: the hub drops what the node sends, the node drops what the hub sends."""

from __future__ import annotations

import ctypes
import os
import subprocess
from dataclasses import dataclass, field

CLONE_NEWNET = 0x40000000
DB_NET = 100  # 10.X.100.0/30: hub .1, database .2
CLIENTS = 200  # 10.X.200.1/32 on the hub's lo: stand-ins and WebSocket clients
LINKS = ("db", "clients")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def available() -> str | None:
    """Why network namespaces cannot be used here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, policy routes)"
    try:
        probe = f"chaosprobe{os.getpid()}"
        if ip("netns", "add", probe, check=False).returncode != 0:
            return "cannot create network namespaces (ip netns add failed)"
        ip("netns", "del", probe, check=False)
    except FileNotFoundError:
        return "the ip command (iproute2) is not installed"
    return None


def netem() -> bool:
    """Whether ``tc netem`` exists on this kernel (checked on a throwaway veth)."""
    probe = f"chnetem{os.getpid() % 10000}"
    if ip("netns", "add", probe, check=False).returncode != 0:
        return False
    try:
        ip("-n", probe, "link", "add", "nm0", "type", "dummy", check=False)
        done = subprocess.run(
            ["tc", "-n", probe, "qdisc", "add", "dev", "nm0", "root", "netem", "delay", "1ms"],
            capture_output=True,
        )
        return done.returncode == 0
    except FileNotFoundError:
        return False
    finally:
        ip("netns", "del", probe, check=False)


@dataclass
class Network:
    prefix: str
    nodes: int
    octet: int = 77
    created: list[str] = field(default_factory=list)
    rules: dict[tuple[int, str], list[tuple[str, ...]]] = field(default_factory=dict)
    _pref: int = 10

    @property
    def hub(self) -> str:
        return f"{self.prefix}hub"

    @property
    def db(self) -> str:
        return f"{self.prefix}db"

    def node(self, i: int) -> str:
        return f"{self.prefix}n{i}"

    def addr(self, net: int, host: int) -> str:
        return f"10.{self.octet}.{net}.{host}"

    @property
    def db_address(self) -> str:
        return self.addr(DB_NET, 2)

    @property
    def hub_db_side(self) -> str:
        return self.addr(DB_NET, 1)

    @property
    def clients_address(self) -> str:
        return self.addr(CLIENTS, 1)

    def node_address(self, i: int) -> str:
        return self.addr(i + 1, 2)

    def up(self) -> None:
        hub = self.hub
        self._ns(hub)
        ip("-n", hub, "addr", "add", f"{self.clients_address}/32", "dev", "lo")
        # partitions must be looked at before the local table (packets for the hub itself)
        ip("-n", hub, "rule", "add", "pref", "1000", "lookup", "local")
        ip("-n", hub, "rule", "del", "pref", "0")
        self._ns(self.db)
        self._link(self.db, "db", DB_NET)
        for i in range(self.nodes):
            self._ns(self.node(i))
            self._link(self.node(i), f"n{i}", i + 1)
            ip("-n", self.node(i), "rule", "add", "pref", "1000", "lookup", "local")
            ip("-n", self.node(i), "rule", "del", "pref", "0")

    def _ns(self, name: str) -> None:
        ip("netns", "add", name)
        self.created.append(name)
        ip("-n", name, "link", "set", "lo", "up")

    def _link(self, ns: str, tag: str, net: int) -> None:
        hub_end, far_end = f"{self.prefix}{tag}h", f"{self.prefix}{tag}x"
        ip("link", "add", hub_end, "netns", self.hub, "type", "veth", "peer", far_end, "netns", ns)
        ip("-n", self.hub, "addr", "add", f"{self.addr(net, 1)}/30", "dev", hub_end)
        ip("-n", ns, "addr", "add", f"{self.addr(net, 2)}/30", "dev", far_end)
        ip("-n", self.hub, "link", "set", hub_end, "up")
        ip("-n", ns, "link", "set", far_end, "up")
        ip("-n", ns, "route", "add", "default", "via", self.addr(net, 1))

    def enter_hub(self) -> None:
        """Move this process (still one thread) into the hub namespace."""
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/var/run/netns/{self.hub}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into the hub namespace failed")
        finally:
            os.close(fd)

    def partition(self, i: int, link: str) -> None:
        """Cut node ``i`` from the database (its proxy on the hub) or from its clients (the
        stand-ins and WebSocket clients): both directions dropped."""
        if (i, link) in self.rules:
            return
        node, hub_side = self.node_address(i), self.addr(i + 1, 1)
        far = [self.hub_db_side] if link == "db" else [self.clients_address, hub_side]
        added: list[tuple[str, ...]] = []
        for other in far:
            self._pref += 1
            added.append((self.hub, "from", node, "to", other, "pref", str(self._pref)))
            added.append((self.node(i), "from", other, "to", node, "pref", str(self._pref)))
        for ns, *rule in added:
            ip("-n", ns, "rule", "add", *rule, "blackhole")
        self.rules[(i, link)] = added

    def heal(self, i: int, link: str) -> None:
        for ns, *rule in self.rules.pop((i, link), []):
            ip("-n", ns, "rule", "del", *rule, "blackhole", check=False)

    def down(self) -> None:
        for name in reversed(self.created):
            ip("netns", "del", name, check=False)
        self.created.clear()
