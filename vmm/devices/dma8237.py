"""The PC/AT's two Intel 8237A DMA controllers and their page registers.

Source: Intel, "8237A High Performance Programmable DMA Controller" datasheet (register
description: current/base address and word count, command, mode, request, mask, status,
temporary; the byte pointer flip-flop; master clear); IBM PC/AT Technical Reference,
"DMA Controller" (DMA 1 for 8-bit channels 0-3 at ports 0x00-0x0F, DMA 2 for 16-bit
channels 4-7 at 0xC0-0xDE on even ports, channel 4 cascading DMA 1; page registers 0x81
ch2, 0x82 ch3, 0x83 ch1, 0x87 ch0, 0x89 ch6, 0x8A ch7, 0x8B ch5, 0x8F ch4/refresh).

Emulated: every register, single/block/demand modes as one transfer per device request,
address increment and decrement, auto-initialisation, terminal count (status TC bits, the
channel masked at TC unless auto-initialising), 8-bit channels moving bytes within their
64 KiB page (the address wraps, the page does not change, as on the PC) and 16-bit
channels moving words within a 128 KiB page. Devices move data with
``write_memory``/``read_memory`` in one call per request (no Python per byte).
Not emulated: memory-to-memory transfers (channel 0/1 on the PC is never used so), the
DREQ/DACK signal timing, the command register's priority and timing bits (stored).
A transfer to an address outside guest RAM is dropped and reads there return 0xFF, as
on an ISA bus with nothing behind it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from vmm.devices.base import Device
from vmm.devices.ioport import read_split, write_split
from vmm.memory import GuestMemory

# Mode register (datasheet "Mode Register").
MODE_VERIFY, MODE_WRITE, MODE_READ = 0x00, 0x04, 0x08  # bits 3-2: WRITE = device to memory
MODE_TYPE_MASK = 0x0C
MODE_AUTOINIT, MODE_DECREMENT = 0x10, 0x20
PAGE_PORTS = {0x87: 0, 0x83: 1, 0x81: 2, 0x82: 3, 0x8F: 4, 0x8B: 5, 0x89: 6, 0x8A: 7}


@dataclass
class DmaChannel:
    base_address: int = 0
    base_count: int = 0
    address: int = 0  # current address (16 bits)
    count: int = 0  # current word count (16 bits): count + 1 units remain
    mode: int = 0
    page: int = 0
    masked: bool = True
    request: bool = False


class Dma8237Pair(Device):
    """Both 8237s: channels 0-3 (bytes) and 4-7 (words)."""

    name = "dma"
    ports = [(0x00, 16), (0x81, 15), (0xC0, 32)]

    def __init__(self, memory: GuestMemory) -> None:
        self.memory = memory
        self.reset()

    def reset(self) -> None:
        self.channels = [DmaChannel() for _ in range(8)]
        self.flip_flop = [False, False]  # per controller: False = the next byte is the low one
        self.command = [0, 0]
        self.status = [0, 0]  # bits 3-0: terminal count reached, bits 7-4: requests
        self.temporary = [0, 0]

    # ---- ports ----

    def _decode(self, port: int) -> tuple[int, int] | None:
        """(controller, register 0-15) of a port, or None for a page register."""
        if port < 0x10:
            return 0, port
        if 0xC0 <= port < 0xE0:
            return (1, (port - 0xC0) >> 1) if not port & 1 else None
        return None

    def _read_byte(self, port: int) -> int:
        if port in PAGE_PORTS:
            return self.channels[PAGE_PORTS[port]].page
        decoded = self._decode(port)
        if decoded is None:
            return 0xFF
        ctrl, reg = decoded
        if reg < 8:
            channel = self.channels[ctrl * 4 + reg // 2]
            value = channel.address if reg % 2 == 0 else channel.count
            high = self.flip_flop[ctrl]
            self.flip_flop[ctrl] = not high
            return (value >> 8) & 0xFF if high else value & 0xFF
        if reg == 8:
            value = self.status[ctrl]
            self.status[ctrl] &= 0xF0  # reading clears the terminal count bits
            return value
        if reg == 13:
            return self.temporary[ctrl]
        if reg == 15:  # the mask register (readable on the 82374 and in QEMU)
            return sum(1 << i for i in range(4) if self.channels[ctrl * 4 + i].masked) | 0xF0
        return 0xFF

    def _write_byte(self, port: int, value: int) -> None:
        if port in PAGE_PORTS:
            self.channels[PAGE_PORTS[port]].page = value
            return
        decoded = self._decode(port)
        if decoded is None:
            return
        ctrl, reg = decoded
        group = self.channels[ctrl * 4 : ctrl * 4 + 4]
        if reg < 8:
            channel = group[reg // 2]
            high = self.flip_flop[ctrl]
            self.flip_flop[ctrl] = not high
            shift, keep = (8, 0x00FF) if high else (0, 0xFF00)
            if reg % 2 == 0:  # writing the base also sets the current register
                channel.base_address = channel.address = (channel.base_address & keep) | (value << shift)
            else:
                channel.base_count = channel.count = (channel.base_count & keep) | (value << shift)
        elif reg == 8:
            self.command[ctrl] = value
        elif reg == 9:
            group[value & 3].request = bool(value & 4)
        elif reg == 10:
            group[value & 3].masked = bool(value & 4)
        elif reg == 11:
            group[value & 3].mode = value
        elif reg == 12:
            self.flip_flop[ctrl] = False
        elif reg == 13:  # master clear: as a hardware reset of this controller
            self.command[ctrl] = self.status[ctrl] = self.temporary[ctrl] = 0
            self.flip_flop[ctrl] = False
            for channel in group:
                channel.masked, channel.request = True, False
        elif reg == 14:
            for channel in group:
                channel.masked = False
        elif reg == 15:
            for i, channel in enumerate(group):
                channel.masked = bool(value >> i & 1)

    def io_read(self, port: int, size: int) -> int:
        return read_split(self._read_byte, port, size)

    def io_write(self, port: int, size: int, value: int) -> None:
        write_split(self._write_byte, port, size, value)

    # ---- transfers (called by devices on their DREQ) ----

    def ready(self, number: int, direction: int) -> bool:
        """Channel ``number`` is unmasked and programmed for ``direction`` (MODE_WRITE: into
        memory, MODE_READ: out of memory; a verify transfer accepts either)."""
        channel = self.channels[number]
        kind = channel.mode & MODE_TYPE_MASK
        return not channel.masked and kind in (direction, MODE_VERIFY)

    def remaining(self, number: int) -> int:
        """Bytes left before terminal count."""
        unit = 2 if number >= 4 else 1
        return (self.channels[number].count + 1) * unit

    def write_memory(self, number: int, data: bytes) -> int:
        """Device to memory: move up to ``len(data)`` bytes; returns how many were taken."""
        taken = 0
        for addr, length in self._run(number, len(data)):
            if self.channels[number].mode & MODE_TYPE_MASK == MODE_WRITE:
                chunk = data[taken : taken + length]
                if self.channels[number].mode & MODE_DECREMENT:
                    chunk = chunk[::-1]
                if self.memory.contains(addr, length):
                    self.memory.write(addr, chunk)
            taken += length
        return taken

    def read_memory(self, number: int, length: int) -> bytes:
        """Memory to device: up to ``length`` bytes (fewer at terminal count)."""
        out = bytearray()
        for addr, size in self._run(number, length):
            if self.channels[number].mode & MODE_TYPE_MASK != MODE_READ:
                out += bytes(size)
                continue
            chunk = self.memory.read(addr, size) if self.memory.contains(addr, size) else b"\xff" * size
            out += chunk[::-1] if self.channels[number].mode & MODE_DECREMENT else chunk
        return bytes(out)

    def _run(self, number: int, length: int):
        """Yield (physical address, bytes) pieces of a transfer of ``length`` bytes,
        advancing the channel and handling terminal count."""
        channel = self.channels[number]
        unit = 2 if number >= 4 else 1
        units = min(length // unit, channel.count + 1)
        step = -1 if channel.mode & MODE_DECREMENT else 1
        done = 0
        while done < units:
            # One contiguous piece: up to the end (or start) of the 64 Ki-unit address space.
            room = (0x10000 - channel.address) if step > 0 else channel.address + 1
            piece = min(units - done, room)
            if unit == 1:
                page_base = channel.page << 16
                low = channel.address if step > 0 else channel.address - piece + 1
                yield page_base | low, piece
            else:
                page_base = (channel.page & 0xFE) << 16
                low = channel.address if step > 0 else channel.address - piece + 1
                yield page_base | (low << 1), piece * 2
            channel.address = (channel.address + step * piece) & 0xFFFF
            done += piece
        channel.count = (channel.count - units) & 0xFFFF
        if units and channel.count == 0xFFFF:  # terminal count
            ctrl, bit = divmod(number, 4)
            self.status[ctrl] |= 1 << bit
            channel.request = False
            if channel.mode & MODE_AUTOINIT:
                channel.address, channel.count = channel.base_address, channel.base_count
            else:
                channel.masked = True

    # ---- persistence ----

    def save(self) -> dict[str, Any]:
        return {
            "channels": [asdict(channel) for channel in self.channels],
            "flip_flop": list(self.flip_flop),
            "command": list(self.command),
            "status": list(self.status),
            "temporary": list(self.temporary),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.reset()
        for channel, saved in zip(self.channels, state["channels"], strict=False):
            for name, value in saved.items():
                if hasattr(channel, name):
                    setattr(channel, name, type(getattr(channel, name))(value))
            channel.address &= 0xFFFF
            channel.count &= 0xFFFF
            channel.base_address &= 0xFFFF
            channel.base_count &= 0xFFFF
            channel.page &= 0xFF
        self.flip_flop = [bool(v) for v in state["flip_flop"][:2]]
        self.command = [int(v) & 0xFF for v in state["command"][:2]]
        self.status = [int(v) & 0xFF for v in state["status"][:2]]
        self.temporary = [int(v) & 0xFF for v in state["temporary"][:2]]
