"""Helpers shared by the byte-wide port devices of the PC.

Most PC chips have 8-bit registers, but a guest may use a 16- or 32-bit ``in``/``out``
on them (``out dx, ax`` to the VGA CRTC index/data pair is common). On the ISA bus such
an access is split into byte cycles on consecutive ports, which is what these helpers do.
A byte port the device does not decode reads as 0xFF, as an undriven ISA bus does.
"""

from __future__ import annotations

from collections.abc import Callable

MAX_ACCESS = 4  # the widest x86 port access (in eax / out eax)


def access_width(size: int) -> int:
    """The number of byte cycles for an access of ``size`` bytes (untrusted: clamp to 1..4)."""
    return max(1, min(int(size), MAX_ACCESS))


def read_split(read_byte: Callable[[int], int], port: int, size: int) -> int:
    """Read ``size`` bytes as byte cycles on ``port``, ``port + 1``, ..., little-endian."""
    value = 0
    for i in range(access_width(size)):
        value |= (read_byte(port + i) & 0xFF) << (8 * i)
    return value


def write_split(write_byte: Callable[[int, int], None], port: int, size: int, value: int) -> None:
    """Write ``value`` as byte cycles on ``port``, ``port + 1``, ..., little-endian."""
    for i in range(access_width(size)):
        write_byte(port + i, (value >> (8 * i)) & 0xFF)


def to_bcd(value: int) -> int:
    return ((value // 10) << 4) | (value % 10)


def from_bcd(value: int) -> int:
    return ((value >> 4) & 0x0F) * 10 + (value & 0x0F)
