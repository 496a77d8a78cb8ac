"""Split virtqueues: the guest's rings, and each descriptor chain parsed once into a
checked request before the device looks at it.

Source: OASIS "Virtual I/O Device (VIRTIO) Version 1.1", 2.6 (split virtqueues): 2.6.5
the descriptor table (``le64 addr; le32 len; le16 flags; le16 next``, flags NEXT 1,
WRITE 2, INDIRECT 4), 2.6.6 the available ring (``flags, idx, ring[N]``), 2.6.8 the used
ring (``flags, idx, ring[N] of {le32 id; le32 len}``), 2.6.4 alignment (16, 2, 4).

What a chain must satisfy here (anything else is the driver's error: the device is
marked DEVICE_NEEDS_RESET, 2.1.1, and stops taking requests from the queue until reset):
every index below the queue size, at most ``size`` descriptors in one chain (a loop
cannot be longer), each buffer inside guest RAM with no overflow, device-readable
buffers before device-writable ones, no INDIRECT descriptors (the feature is not
offered), a total below 4 GiB, and ``avail.idx`` at most ``size`` ahead of what the
device has taken. Nothing is allocated in proportion to a guest-written count.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from vmm.memory import GuestMemory

VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_F_INDIRECT = 1, 2, 4
VIRTQ_AVAIL_F_NO_INTERRUPT = 1
MAX_QUEUE_SIZE = 32768
DESC = struct.Struct("<QIHH")


class ChainError(Exception):
    """A descriptor chain or ring the driver set up wrongly (the device needs a reset)."""


@dataclass
class Chain:
    """One request: its head index and the buffers, readable ones first."""

    head: int
    readable: list[tuple[int, int]] = field(default_factory=list)  # (guest address, length)
    writable: list[tuple[int, int]] = field(default_factory=list)

    @property
    def readable_length(self) -> int:
        return sum(length for _, length in self.readable)

    @property
    def writable_length(self) -> int:
        return sum(length for _, length in self.writable)

    def read(self, memory: GuestMemory, offset: int = 0, limit: int | None = None) -> bytes:
        """The device-readable bytes from ``offset``, at most ``limit`` of them."""
        out = bytearray()
        for addr, length in self.readable:
            if offset >= length:
                offset -= length
                continue
            take = length - offset if limit is None else min(length - offset, limit - len(out))
            out += memory.view[addr + offset : addr + offset + take]
            offset = 0
            if limit is not None and len(out) >= limit:
                break
        return bytes(out)

    def write(self, memory: GuestMemory, data: bytes | memoryview, offset: int = 0) -> int:
        """Scatter ``data`` into the device-writable buffers from ``offset``; returns bytes written."""
        done = 0
        for addr, length in self.writable:
            if offset >= length:
                offset -= length
                continue
            take = min(length - offset, len(data) - done)
            if take <= 0:
                break
            memory.write(addr + offset, data[done : done + take])
            done += take
            offset = 0
        return done


@dataclass
class SplitQueue:
    """One virtqueue's registers (as the transport sets them) and the device's progress."""

    max_size: int
    size: int = 0
    enabled: bool = False
    desc: int = 0
    driver: int = 0  # the available ring
    device: int = 0  # the used ring
    last_avail: int = 0  # next available-ring entry the device takes
    used_idx: int = 0  # next used-ring index the device writes

    def __post_init__(self) -> None:
        if self.size == 0:
            self.size = self.max_size

    def reset(self) -> None:
        self.size, self.enabled = self.max_size, False
        self.desc = self.driver = self.device = 0
        self.last_avail = self.used_idx = 0

    def check_layout(self, memory: GuestMemory) -> None:
        """The rings as the driver placed them: raise ChainError if they cannot be used."""
        size = self.size
        if not 0 < size <= self.max_size or size & (size - 1):
            raise ChainError(f"queue size {size} is not a power of two up to {self.max_size}")
        for name, addr, align, length in (("descriptor table", self.desc, 16, 16 * size),
                                          ("available ring", self.driver, 2, 6 + 2 * size),
                                          ("used ring", self.device, 4, 6 + 8 * size)):  # fmt: skip
            if addr % align or not memory.contains(addr, length):
                raise ChainError(f"{name} at {addr:#x} is misaligned or outside RAM")

    # ---- taking requests ----

    def pending(self, memory: GuestMemory) -> int:
        """How many chains the driver has made available and the device not yet taken."""
        avail_idx = memory_u16(memory, self.driver + 2)
        count = (avail_idx - self.last_avail) & 0xFFFF
        if count > self.size:
            raise ChainError(f"available index {avail_idx} is {count} entries ahead (queue size {self.size})")
        return count

    def pop(self, memory: GuestMemory) -> Chain | None:
        """The next available chain, checked; None when the ring is empty."""
        if not self.pending(memory):
            return None
        slot = self.driver + 4 + 2 * (self.last_avail % self.size)
        head = memory_u16(memory, slot)
        self.last_avail = (self.last_avail + 1) & 0xFFFF
        return self.parse_chain(memory, head)

    def parse_chain(self, memory: GuestMemory, head: int) -> Chain:
        chain = Chain(head)
        index = head
        total = 0
        for _ in range(self.size):
            if index >= self.size:
                raise ChainError(f"descriptor index {index} is outside the table ({self.size} entries)")
            addr, length, flags, following = DESC.unpack_from(memory.view, self.desc + 16 * index)
            if flags & VIRTQ_DESC_F_INDIRECT:
                raise ChainError("indirect descriptor (VIRTIO_F_INDIRECT_DESC was not offered)")
            if not memory.contains(addr, length):
                raise ChainError(f"buffer {addr:#x}+{length:#x} is outside guest RAM")
            total += length
            if total >= 1 << 32:
                raise ChainError("chain is 4 GiB or longer")
            if flags & VIRTQ_DESC_F_WRITE:
                chain.writable.append((addr, length))
            elif chain.writable:
                raise ChainError("a device-readable buffer follows a device-writable one")
            else:
                chain.readable.append((addr, length))
            if not flags & VIRTQ_DESC_F_NEXT:
                return chain
            index = following
        raise ChainError(f"chain from descriptor {head} is longer than the queue (a loop)")

    # ---- completing requests ----

    def push(self, memory: GuestMemory, head: int, written: int) -> None:
        """Put chain ``head`` in the used ring with ``written`` bytes written, then publish it."""
        entry = self.device + 4 + 8 * (self.used_idx % self.size)
        memory.write(entry, struct.pack("<II", head, written))
        self.used_idx = (self.used_idx + 1) & 0xFFFF
        memory.write(self.device + 2, struct.pack("<H", self.used_idx))

    def interrupts_suppressed(self, memory: GuestMemory) -> bool:
        return bool(memory_u16(memory, self.driver) & VIRTQ_AVAIL_F_NO_INTERRUPT)

    # ---- state ----

    def save(self) -> dict[str, Any]:
        return {"size": self.size, "enabled": self.enabled, "desc": self.desc, "driver": self.driver,
                "device": self.device, "last_avail": self.last_avail, "used_idx": self.used_idx}  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def memory_u16(memory: GuestMemory, addr: int) -> int:
    return memory.view[addr] | memory.view[addr + 1] << 8
