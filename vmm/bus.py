"""The port-I/O bus and the memory-mapped I/O bus.

An access the CPU backend cannot complete from RAM comes here: the bus finds the device
that claimed the port or address range and forwards the access with the absolute port or
the offset inside the device's window. An access nothing claims behaves as on a PC's ISA
bus: reads return all ones, writes are dropped; with ``log_unclaimed`` each such access is
recorded so a user can see what the guest probed.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

# An observer of bus traffic: (direction "in"/"out" or "read"/"write", port or address,
# size, value), called after the access was carried out.
Observer = Callable[[str, int, int, int], None]


class PortDevice(Protocol):
    def io_read(self, port: int, size: int) -> int: ...

    def io_write(self, port: int, size: int, value: int) -> None: ...


class MmioDevice(Protocol):
    def mmio_read(self, offset: int, size: int) -> int: ...

    def mmio_write(self, offset: int, size: int, value: int) -> None: ...


def all_ones(size: int) -> int:
    return (1 << (8 * size)) - 1


@dataclass
class UnclaimedLog:
    enabled: bool = False
    limit: int = 1000
    entries: list[tuple[str, int, int, int | None]] = field(default_factory=list)
    count: int = 0

    def record(self, kind: str, addr: int, size: int, value: int | None) -> None:
        self.count += 1
        if self.enabled and len(self.entries) < self.limit:
            self.entries.append((kind, addr, size, value))


class IoBus:
    """Ports 0x0000-0xFFFF, each claimed by at most one device."""

    def __init__(self) -> None:
        self._devices: list[PortDevice | None] = [None] * 0x10000
        self.unclaimed = UnclaimedLog()
        self.observers: list[Observer] = []  # empty on the fast path: one test per access

    def register(self, first_port: int, count: int, device: PortDevice) -> None:
        for port in range(first_port, first_port + count):
            if self._devices[port] is not None:
                raise ValueError(f"I/O port {port:#x} is already claimed by {self._devices[port]!r}")
            self._devices[port] = device

    def claim(self, first_port: int, count: int, device: PortDevice) -> bool:
        """Register ``device`` if every port is free (a guest-placed window: no error)."""
        if any(self._devices[port] is not None for port in range(first_port, first_port + count)):
            return False
        self.register(first_port, count, device)
        return True

    def unregister(self, first_port: int, count: int, device: PortDevice) -> None:
        for port in range(first_port, first_port + count):
            if self._devices[port] is device:
                self._devices[port] = None

    def device_at(self, port: int) -> PortDevice | None:
        return self._devices[port & 0xFFFF]

    def read(self, port: int, size: int) -> int:
        device = self._devices[port & 0xFFFF]
        if device is None:
            self.unclaimed.record("in", port, size, None)
            value = all_ones(size)
        else:
            value = device.io_read(port & 0xFFFF, size) & all_ones(size)
        if self.observers:
            for observer in self.observers:
                observer("in", port, size, value)
        return value

    def write(self, port: int, size: int, value: int) -> None:
        device = self._devices[port & 0xFFFF]
        if device is None:
            self.unclaimed.record("out", port, size, value)
        else:
            device.io_write(port & 0xFFFF, size, value & all_ones(size))
        if self.observers:
            for observer in self.observers:
                observer("out", port, size, value)

    def read_string(self, port: int, size: int, count: int) -> bytes:
        """``count`` reads of ``size`` bytes (``rep ins``): one call into a device that
        serves strings (``io_read_string``), else (or while observers watch every
        access) one read each."""
        device = self._devices[port & 0xFFFF]
        if device is not None and hasattr(device, "io_read_string") and not self.observers:
            return device.io_read_string(port & 0xFFFF, size, count)
        return b"".join(self.read(port, size).to_bytes(size, "little") for _ in range(count))

    def write_string(self, port: int, size: int, data: bytes) -> None:
        """The writes of a ``rep outs``: ``len(data) // size`` values of ``size`` bytes."""
        device = self._devices[port & 0xFFFF]
        if device is not None and hasattr(device, "io_write_string") and not self.observers:
            device.io_write_string(port & 0xFFFF, size, data)
            return
        for at in range(0, len(data) - size + 1, size):
            self.write(port, size, int.from_bytes(data[at : at + size], "little"))


@dataclass(frozen=True)
class MmioWindow:
    base: int
    size: int
    device: MmioDevice

    @property
    def end(self) -> int:
        return self.base + self.size


class MmioBus:
    """Physical address windows claimed by devices; the CPU backend maps each as MMIO."""

    def __init__(self) -> None:
        self.windows: list[MmioWindow] = []
        self._bases: list[int] = []
        self.unclaimed = UnclaimedLog()
        self.observers: list[Observer] = []

    def register(self, base: int, size: int, device: MmioDevice) -> MmioWindow:
        window = MmioWindow(base, size, device)
        for other in self.windows:
            if base < other.end and other.base < window.end:
                raise ValueError(f"MMIO window {base:#x}+{size:#x} overlaps {other.base:#x}+{other.size:#x}")
        index = bisect.bisect(self._bases, base)
        self.windows.insert(index, window)
        self._bases.insert(index, base)
        return window

    def find(self, addr: int) -> MmioWindow | None:
        index = bisect.bisect(self._bases, addr) - 1
        if index >= 0 and addr < self.windows[index].end:
            return self.windows[index]
        return None

    def read(self, addr: int, size: int) -> int:
        window = self.find(addr)
        if window is None:
            self.unclaimed.record("read", addr, size, None)
            value = all_ones(size)
        else:
            value = window.device.mmio_read(addr - window.base, size) & all_ones(size)
        for observer in self.observers:
            observer("read", addr, size, value)
        return value

    def write(self, addr: int, size: int, value: int) -> None:
        window = self.find(addr)
        if window is None:
            self.unclaimed.record("write", addr, size, value)
        else:
            window.device.mmio_write(addr - window.base, size, value & all_ones(size))
        for observer in self.observers:
            observer("write", addr, size, value)


class BusPlatform:
    """The Platform a CPU backend calls (vmm.cpu.base): the buses' own methods and the
    interrupt controller's INTA, bound once, so that a port access goes from the backend
    straight to the bus and its device without a detour through Machine."""

    def __init__(self, io: IoBus, mmio: MmioBus, interrupt_acknowledge: Callable[[], int]) -> None:
        self.io_read = io.read
        self.io_write = io.write
        self.mmio_read = mmio.read
        self.mmio_write = mmio.write
        self.io_read_string = io.read_string
        self.io_write_string = io.write_string
        self.interrupt_acknowledge = interrupt_acknowledge
