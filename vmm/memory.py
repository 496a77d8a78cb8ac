"""Guest physical RAM: one host mmap shared by the CPU backend and the devices.

The mapping's host address never changes for the life of the machine (the CPU backends
hold it: Unicorn's ``uc_mem_map_ptr``, KVM's memory slot). A snapshot restore replaces
the pages under that address with a ``MAP_PRIVATE`` mapping of a ``.vmem`` file
(:meth:`GuestMemory.map_file`, ``mmap(MAP_FIXED)``): copy-on-write, so a restore costs no
copy, pages the guest never writes stay shared with the page cache (and with every other
VM started from the same file), and the file itself is never changed.

Every access from the monitor side is bounds-checked (DESIGN.md principle 5): a guest
address or length that falls outside RAM raises :class:`GuestMemoryError` instead of
touching host memory.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct

from vmm.errors import GuestError


class GuestMemoryError(GuestError):
    """A guest-supplied physical address range is not backed by RAM."""


# libc is already in the process: no ctypes.util.find_library, which runs `ldconfig -p`.
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long)
MAP_FIXED = 0x10
MAP_FAILED = ctypes.c_void_p(-1).value


def _map_fixed(address: int, length: int, fd: int, offset: int = 0) -> None:
    """Replace the pages at ``address`` with a private mapping of ``fd`` (anonymous when -1)."""
    flags = mmap.MAP_PRIVATE | MAP_FIXED | (mmap.MAP_ANONYMOUS if fd < 0 else 0)
    result = _libc.mmap(address, length, mmap.PROT_READ | mmap.PROT_WRITE, flags, fd, offset)
    if result in (None, MAP_FAILED) or result != address:
        err = ctypes.get_errno()
        raise GuestError(f"cannot map guest RAM over {address:#x}+{length:#x}: {os.strerror(err)}")


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
        if hasattr(mmap, "MADV_HUGEPAGE"):
            # Huge pages, as QEMU asks for guest RAM: a guest that zeroes its memory at
            # boot takes one fault per 2 MiB instead of one per 4 KiB.
            self.mmap.madvise(mmap.MADV_HUGEPAGE)
        self.view = memoryview(self.mmap)
        self.address = ctypes.addressof(ctypes.c_char.from_buffer(self.mmap))
        self.backing: str | None = None  # the .vmem file the pages come from (copy-on-write), if any
        # Callbacks told about host-side writes (the CPU backend drops translated code).
        self._write_listeners: list = []

    def add_write_listener(self, listener) -> None:
        """Call ``listener(addr, length)`` after each monitor-side write into RAM."""
        self._write_listeners.append(listener)

    def remove_write_listener(self, listener) -> None:
        self._write_listeners.remove(listener)

    def changed(self, addr: int, length: int) -> None:
        """Tell the write listeners (translated code) that RAM changed behind them."""
        for listener in self._write_listeners:
            listener(addr, length)

    def map_file(self, fd: int, name: str) -> None:
        """Guest RAM becomes a copy-on-write view of the open file ``fd`` (a ``.vmem`` of
        exactly this size): one ``mmap(MAP_FIXED | MAP_PRIVATE)`` at the same host address,
        so the CPU backends keep their mapping. The file must never be changed in place
        (vmm replaces files by rename, and a mapped inode lives on after an unlink)."""
        size = os.fstat(fd).st_size
        if size != self.size:
            raise GuestError(f"{name}: memory file is {size} bytes, guest RAM is {self.size}")
        _map_fixed(self.address, self.size, fd)
        self.backing = name
        self.changed(0, self.size)

    def clear(self) -> None:
        """All of RAM reads as zeros again, as at power-on (a fresh anonymous mapping)."""
        _map_fixed(self.address, self.size, -1)
        self.backing = None
        self.changed(0, self.size)

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
        if self.backing is None:
            self.mmap.madvise(mmap.MADV_DONTNEED, addr, length)
        else:  # DONTNEED on a private file mapping would bring the file's pages back
            _map_fixed(self.address + addr, length, -1)
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
