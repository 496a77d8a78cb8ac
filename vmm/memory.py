"""Guest physical RAM: one host mmap shared by the CPU backend and the devices.

Every access from the monitor side is bounds-checked (DESIGN.md principle 5): a guest
address or length that falls outside RAM raises :class:`GuestMemoryError` instead of
touching host memory.
"""

from __future__ import annotations

import mmap
import struct

from vmm.errors import GuestError


class GuestMemoryError(GuestError):
    """A guest-supplied physical address range is not backed by RAM."""


class GuestMemory:
    """Guest RAM from physical address 0 up to ``size`` bytes, in one anonymous mmap."""

    def __init__(self, size: int) -> None:
        if size <= 0 or size % 4096:
            raise ValueError(f"guest RAM size must be a positive multiple of 4 KiB, not {size}")
        self.size = size
        try:
            self.mmap = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        except (OSError, OverflowError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise GuestError(
                f"cannot set up {size >> 20} MiB of guest RAM on this host: {reason} (use a smaller --mem or memsize)"
            ) from None
        self.view = memoryview(self.mmap)
        # Callbacks told about host-side writes (the CPU backend drops translated code).
        self._write_listeners: list = []

    def add_write_listener(self, listener) -> None:
        """Call ``listener(addr, length)`` after each monitor-side write into RAM."""
        self._write_listeners.append(listener)

    def remove_write_listener(self, listener) -> None:
        self._write_listeners.remove(listener)

    def contains(self, addr: int, length: int = 1) -> bool:
        return 0 <= addr and length >= 0 and addr + length <= self.size

    def check(self, addr: int, length: int) -> None:
        if not self.contains(addr, length):
            raise GuestMemoryError(f"guest physical range {addr:#x}+{length:#x} is outside RAM (size {self.size:#x})")

    def read(self, addr: int, length: int) -> bytes:
        self.check(addr, length)
        return bytes(self.view[addr : addr + length])

    def write(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        length = len(data)
        self.check(addr, length)
        if not length:
            return  # nothing to write (an empty module, a segment of no bytes)
        self.view[addr : addr + length] = data
        for listener in self._write_listeners:
            listener(addr, length)

    def discard(self, addr: int, length: int) -> None:
        """Give whole pages back to the host (madvise DONTNEED): they read as zeros after."""
        self.check(addr, length)
        if addr % mmap.PAGESIZE or length % mmap.PAGESIZE:
            raise ValueError(f"discard of {addr:#x}+{length:#x} is not whole host pages")
        self.mmap.madvise(mmap.MADV_DONTNEED, addr, length)
        for listener in self._write_listeners:
            listener(addr, length)

    def read_u8(self, addr: int) -> int:
        return self.read(addr, 1)[0]

    def read_u16(self, addr: int) -> int:
        return struct.unpack("<H", self.read(addr, 2))[0]

    def read_u32(self, addr: int) -> int:
        return struct.unpack("<I", self.read(addr, 4))[0]

    def read_u64(self, addr: int) -> int:
        return struct.unpack("<Q", self.read(addr, 8))[0]

    def write_u8(self, addr: int, value: int) -> None:
        self.write(addr, bytes((value & 0xFF,)))

    def write_u16(self, addr: int, value: int) -> None:
        self.write(addr, struct.pack("<H", value & 0xFFFF))

    def write_u32(self, addr: int, value: int) -> None:
        self.write(addr, struct.pack("<I", value & 0xFFFFFFFF))

    def write_u64(self, addr: int, value: int) -> None:
        self.write(addr, struct.pack("<Q", value & 0xFFFFFFFFFFFFFFFF))

    def close(self) -> None:
        self.view.release()
        self.mmap.close()
