"""A minimal virtio 1.x driver in Python, for tests: brings a VirtioDevice up through its
configuration space and BAR 0 as a guest driver does (3.1.1), and submits chains."""

from __future__ import annotations

import struct

from vmm.devices.pci.function import CMD_BUS_MASTER, CMD_MEMORY, COMMAND
from vmm.devices.virtio.queue import VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE
from vmm.devices.virtio.transport import (
    ACKNOWLEDGE,
    COMMON_FIELDS,
    DEVICE_OFFSET,
    DRIVER,
    DRIVER_OK,
    FEATURES_OK,
    ISR_OFFSET,
    NOTIFY_MULTIPLIER,
    NOTIFY_OFFSET,
    VirtioDevice,
)  # fmt: skip

RING_BASE = 0x100000
DATA_BASE = 0x200000


class Driver:
    def __init__(self, device: VirtioDevice, queue_size: int = 16) -> None:
        self.dev = device
        self.memory = device.memory
        self.queue_size = queue_size
        self.avail_idx: dict[int, int] = {}
        self.used_seen: dict[int, int] = {}
        self.next_data = DATA_BASE

    def common(self, name: str, value: int | None = None) -> int:
        offset, size = COMMON_FIELDS[name]
        if value is None:
            if size == 8:
                return self.dev.bar_read(0, offset, 4) | self.dev.bar_read(0, offset + 4, 4) << 32
            return self.dev.bar_read(0, offset, size)
        if size == 8:
            self.dev.bar_write(0, offset, 4, value & 0xFFFFFFFF)
            self.dev.bar_write(0, offset + 4, 4, value >> 32)
        else:
            self.dev.bar_write(0, offset, size, value)
        return value

    def rings(self, q: int) -> tuple[int, int, int]:
        base = RING_BASE + q * 0x10000
        return base, base + 0x4000, base + 0x8000

    def bring_up(self, features: int | None = None) -> int:
        self.dev.config_write(COMMAND, 2, CMD_MEMORY | CMD_BUS_MASTER)
        self.common("device_status", 0)
        self.common("device_status", ACKNOWLEDGE | DRIVER)
        offered = 0
        for select in (0, 1):
            self.common("device_feature_select", select)
            offered |= self.common("device_feature") << (32 * select)
        wanted = offered if features is None else features
        for select in (0, 1):
            self.common("driver_feature_select", select)
            self.common("driver_feature", (wanted >> (32 * select)) & 0xFFFFFFFF)
        self.common("device_status", ACKNOWLEDGE | DRIVER | FEATURES_OK)
        if not self.common("device_status") & FEATURES_OK:
            return offered
        for q in range(self.common("num_queues")):
            self.common("queue_select", q)
            self.common("queue_size", self.queue_size)
            desc, avail, used = self.rings(q)
            for addr in (desc, avail, used):
                self.memory.write(addr, bytes(0x4000))
            self.common("queue_desc", desc)
            self.common("queue_driver", avail)
            self.common("queue_device", used)
            self.common("queue_enable", 1)
            self.avail_idx[q] = 0
            self.used_seen[q] = 0
        self.common("device_status", ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK)
        return offered

    def buffer(self, data: bytes | int) -> int:
        length = data if isinstance(data, int) else len(data)
        addr = self.next_data
        self.next_data += (length + 0xFFF) & ~0xFFF or 0x1000
        if not isinstance(data, int):
            self.memory.write(addr, data)
        return addr

    def submit(self, q: int, readable: list[bytes], writable: list[int], notify: bool = True) -> int:
        """Post one chain (descriptors 0..n-1); returns its head."""
        self.next_data = DATA_BASE + q * 0x100000
        desc, avail, _used = self.rings(q)
        parts = [(self.buffer(b), len(b), 0) for b in readable]
        parts += [(self.buffer(n), n, VIRTQ_DESC_F_WRITE) for n in writable]
        for i, (addr, length, flags) in enumerate(parts):
            more = VIRTQ_DESC_F_NEXT if i + 1 < len(parts) else 0
            self.memory.write(desc + 16 * i, struct.pack("<QIHH", addr, length, flags | more, i + 1))
        idx = self.avail_idx[q]
        self.memory.write(avail + 4 + 2 * (idx % self.queue_size), struct.pack("<H", 0))
        self.avail_idx[q] = (idx + 1) & 0xFFFF
        self.memory.write(avail + 2, struct.pack("<H", self.avail_idx[q]))
        if notify:
            self.notify(q)
        return 0

    def notify(self, q: int) -> None:
        self.dev.bar_write(0, NOTIFY_OFFSET + NOTIFY_MULTIPLIER * q, 2, q)

    def used(self, q: int) -> list[tuple[int, int]]:
        _desc, _avail, used = self.rings(q)
        idx = self.memory.read_u16(used + 2)
        out = []
        while self.used_seen[q] != idx:
            entry = used + 4 + 8 * (self.used_seen[q] % self.queue_size)
            out.append(struct.unpack("<II", self.memory.read(entry, 8)))
            self.used_seen[q] = (self.used_seen[q] + 1) & 0xFFFF
        return out

    def buffer_bytes(self, q: int, i: int) -> bytes:
        desc, _avail, _used = self.rings(q)
        addr, length, _flags, _next = struct.unpack("<QIHH", self.memory.read(desc + 16 * i, 16))
        return self.memory.read(addr, length)

    def isr(self) -> int:
        return self.dev.bar_read(0, ISR_OFFSET, 1)

    def device_config(self, offset: int, size: int) -> int:
        return self.dev.bar_read(0, DEVICE_OFFSET + offset, size)
