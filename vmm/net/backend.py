"""The packet interface between a virtual NIC and the network behind it.

A NIC hands each Ethernet frame the guest transmits to ``backend.send(frame)``; the
backend hands frames for the guest to the ``deliver`` callback the NIC attached. The NIC
queues those (boundedly) until the guest has posted receive buffers, so a backend never
waits on the guest. Backends here: ``loopback`` (every frame comes straight back, for
tests and for drivers' self-checks), ``null`` (a cable to nowhere: frames are dropped),
and :class:`PcapTap`, which wraps any backend and records both directions in a pcap file
(nanosecond timestamps from virtual time, so a deterministic run gives the same file).
The user-mode NAT and the switch plug in behind the same interface.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from vmm.errors import ConfigError
from vmm.net.pcap import PcapWriter


class NetBackend:
    """Where a NIC's frames go. Subclasses override ``send``."""

    kind = "null"
    link_up = True
    # True: frames arrive from outside virtual time (host sockets): the machine polls the
    # backend between slices and, while the guest idles, waits on ``fds()`` in host time
    # (docs/design-notes.md, "Networks"; /work/notes/net-backend-api.md).
    external = False

    def __init__(self) -> None:
        self.deliver: Callable[[bytes], None] = lambda _frame: None

    def attach(self, deliver: Callable[[bytes], None]) -> None:
        self.deliver = deliver

    def send(self, frame: bytes) -> None:
        """A frame from the guest (dropped by the null backend)."""

    def fds(self) -> list[int]:
        """Host file descriptors to wait on (readable) while the guest idles."""
        return []

    def poll(self) -> None:
        """Without blocking: take what is ready on the host side and deliver it."""

    def timeout_ns(self) -> int | None:
        """Host nanoseconds until the backend's next timer wants ``poll()`` (None: none)."""
        return None

    def close(self) -> None:
        """Release host resources."""


class LoopbackBackend(NetBackend):
    """Every frame the guest sends is received back, unchanged."""

    kind = "loopback"

    def send(self, frame: bytes) -> None:
        self.deliver(frame)


class PcapTap(NetBackend):
    """Records every frame in both directions to ``path``, then passes it on."""

    def __init__(self, inner: NetBackend, path: Path, now_ns: Callable[[], int]) -> None:
        super().__init__()
        self.inner = inner
        self.kind = f"{inner.kind}+pcap"
        self.link_up = inner.link_up
        self.external = inner.external
        self.writer = PcapWriter(path, now_ns)
        self._record = self.writer.write
        inner.attach(self._received)

    def fds(self) -> list[int]:
        return self.inner.fds()

    def poll(self) -> None:
        self.inner.poll()

    def timeout_ns(self) -> int | None:
        return self.inner.timeout_ns()

    def _received(self, frame: bytes) -> None:
        self._record(frame)
        self.deliver(frame)

    def send(self, frame: bytes) -> None:
        self._record(frame)
        self.inner.send(frame)

    def close(self) -> None:
        self.inner.close()
        self.writer.close()


def _user(options: dict[str, str], name: str, now_ns: Callable[[], int]) -> NetBackend:
    from vmm.net.slirp import open_user

    return open_user(options, name, now_ns)


def _switch(options: dict[str, str], name: str, now_ns: Callable[[], int]) -> NetBackend:
    from vmm.net.switch import parse_port_mode
    from vmm.net.switch_client import SwitchBackend

    return SwitchBackend(Path(options["switch"]), parse_port_mode(options, "--nic switch"), name)


# kind -> factory(options, name, now_ns): options are the backend's own keys from --nic/.vmx,
# now_ns the clock it lives on (the machine's virtual clock in a VM).
BACKENDS: dict[str, Callable[[dict[str, str], str, Callable[[], int]], NetBackend]] = {
    "loopback": lambda _options, _name, _now_ns: LoopbackBackend(),
    "null": lambda _options, _name, _now_ns: NetBackend(),
    "user": _user,
    "switch": _switch,
}


def open_backend(kind: str, options: dict[str, str] | None = None, name: str = "nic",
                 now_ns: Callable[[], int] = time.monotonic_ns) -> NetBackend:  # fmt: skip
    factory = BACKENDS.get(kind)
    if factory is None:
        known = ", ".join(sorted(BACKENDS))
        raise ConfigError(f"network backend {kind!r} is not available in this vmm (available: {known})")
    return factory(dict(options or {}), name, now_ns)
