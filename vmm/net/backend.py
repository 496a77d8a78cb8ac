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

import struct
from collections.abc import Callable
from pathlib import Path

from vmm.errors import ConfigError

LINKTYPE_ETHERNET = 1
PCAP_MAGIC_NS = 0xA1B23C4D
SNAPLEN = 65535


class NetBackend:
    """Where a NIC's frames go. Subclasses override ``send``."""

    kind = "null"
    link_up = True

    def __init__(self) -> None:
        self.deliver: Callable[[bytes], None] = lambda _frame: None

    def attach(self, deliver: Callable[[bytes], None]) -> None:
        self.deliver = deliver

    def send(self, frame: bytes) -> None:
        """A frame from the guest (dropped by the null backend)."""

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
        self.now_ns = now_ns
        try:
            self.file = open(path, "wb")  # noqa: SIM115 - kept open for the run
        except OSError as exc:
            raise ConfigError(f"{path}: cannot write the packet capture: {exc.strerror}") from None
        self.file.write(struct.pack("<IHHiIII", PCAP_MAGIC_NS, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))
        inner.attach(self._received)

    def _record(self, frame: bytes) -> None:
        seconds, nanoseconds = divmod(self.now_ns(), 1_000_000_000)
        captured = frame[:SNAPLEN]
        self.file.write(struct.pack("<IIII", seconds, nanoseconds, len(captured), len(frame)) + captured)
        self.file.flush()

    def _received(self, frame: bytes) -> None:
        self._record(frame)
        self.deliver(frame)

    def send(self, frame: bytes) -> None:
        self._record(frame)
        self.inner.send(frame)

    def close(self) -> None:
        self.inner.close()
        self.file.close()


BACKENDS: dict[str, Callable[[], NetBackend]] = {"loopback": LoopbackBackend, "null": NetBackend}


def open_backend(kind: str) -> NetBackend:
    factory = BACKENDS.get(kind)
    if factory is None:
        known = ", ".join(sorted(BACKENDS))
        raise ConfigError(f"network backend {kind!r} is not available in this vmm (available: {known})")
    return factory()
