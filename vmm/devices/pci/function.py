"""One PCI function's configuration space: a type 0 header, BARs, capabilities, INTx.

Source: PCI Local Bus Specification 3.0, chapter 6 ("Configuration Space"): 6.2 the
predefined header (Vendor ID, Device ID, Command, Status, Revision ID, Class Code,
Header Type, BARs 0x10-0x24, Subsystem IDs 0x2C, Capabilities Pointer 0x34, Interrupt
Line 0x3C, Interrupt Pin 0x3D), 6.2.5.1 BAR sizing (software writes all ones and reads
back the size mask), 6.7 the capabilities list.

Emulated: the header with per-bit write masks (read-only bits keep their value, the
Status register's error bits are write-one-to-clear), I/O and 32-bit memory BARs of a
power-of-two size, the Command register's I/O, Memory, Bus Master and Interrupt Disable
bits, Status' Interrupt Status and Capabilities List bits, and INTx: a function drives
its pin, the bus routes it. Not emulated: 64-bit and prefetchable BARs, expansion ROMs,
parity/SERR reporting, type 1 (PCI-to-PCI bridge) headers.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vmm.devices.base import Device

# Header offsets (PCI 3.0 figure 6-1).
VENDOR_ID, DEVICE_ID, COMMAND, STATUS = 0x00, 0x02, 0x04, 0x06
REVISION_ID, CLASS_PROG, CLASS_SUB, CLASS_BASE = 0x08, 0x09, 0x0A, 0x0B
CACHE_LINE_SIZE, LATENCY_TIMER, HEADER_TYPE = 0x0C, 0x0D, 0x0E
BAR0, BAR_COUNT = 0x10, 6
SUBSYSTEM_VENDOR_ID, SUBSYSTEM_ID = 0x2C, 0x2E
CAPABILITIES_POINTER = 0x34
INTERRUPT_LINE, INTERRUPT_PIN = 0x3C, 0x3D
CONFIG_SIZE = 256
FIRST_CAPABILITY = 0x40

# Command register bits.
CMD_IO, CMD_MEMORY, CMD_BUS_MASTER, CMD_INTX_DISABLE = 0x0001, 0x0002, 0x0004, 0x0400
COMMAND_WRITABLE = CMD_IO | CMD_MEMORY | CMD_BUS_MASTER | 0x0040 | 0x0100 | CMD_INTX_DISABLE
# Status register bits.
STATUS_INTERRUPT, STATUS_CAP_LIST = 0x0008, 0x0010
STATUS_ERRORS = 0xF900  # parity, signalled/received aborts, SERR: write one to clear

BAR_IO_SPACE = 0x1
HEADER_MULTIFUNCTION = 0x80


@dataclass(frozen=True)
class Bar:
    """A base address register: ``io`` space or 32-bit non-prefetchable memory."""

    size: int
    io: bool = False

    def __post_init__(self) -> None:
        minimum = 4 if self.io else 16
        if self.size < minimum or self.size & (self.size - 1):
            raise ValueError(f"a BAR is a power of two of at least {minimum} bytes, not {self.size}")

    @property
    def flags(self) -> int:
        return BAR_IO_SPACE if self.io else 0


class PciFunction(Device):
    """A function's 256-byte configuration space and the BARs it decodes.

    Subclasses set the identity in ``__init__`` (through :meth:`init_header`), declare
    their BARs and capabilities, and implement ``bar_read``/``bar_write`` for accesses
    that fall inside a BAR the bus has mapped.
    """

    name = "pci-function"

    def __init__(self) -> None:
        self.config = bytearray(CONFIG_SIZE)
        self.wmask = bytearray(CONFIG_SIZE)  # bits a guest write may change
        self.w1cmask = bytearray(CONFIG_SIZE)  # bits a guest write of 1 clears
        self.bars: list[Bar | None] = [None] * BAR_COUNT
        self._next_capability = FIRST_CAPABILITY
        self._last_capability: int | None = None
        self.intx_level = False
        # Set by the bus when the function is plugged in.
        self.on_intx: Callable[[PciFunction], None] = lambda _function: None
        self.on_decode_change: Callable[[], None] = lambda: None
        self.slot = 0
        self.function = 0
        self._power_on_config = b""

    # ---- building the header ----

    def init_header(self, vendor: int, device: int, class_code: int, revision: int = 0,
                    subsystem_vendor: int = 0, subsystem: int = 0, interrupt_pin: int = 0,
                    header_type: int = 0) -> None:  # fmt: skip
        """``class_code`` is the 24-bit base class, subclass and programming interface."""
        struct.pack_into("<HH", self.config, VENDOR_ID, vendor, device)
        self.config[REVISION_ID] = revision
        self.config[CLASS_PROG : CLASS_BASE + 1] = class_code.to_bytes(3, "little")
        self.config[HEADER_TYPE] = header_type
        struct.pack_into("<HH", self.config, SUBSYSTEM_VENDOR_ID, subsystem_vendor, subsystem)
        self.config[INTERRUPT_PIN] = interrupt_pin
        self._set_mask(COMMAND, 2, COMMAND_WRITABLE)
        self._set_mask(STATUS, 2, STATUS_ERRORS, w1c=True)
        self._set_mask(CACHE_LINE_SIZE, 1, 0xFF)
        self._set_mask(LATENCY_TIMER, 1, 0xFF)
        self._set_mask(INTERRUPT_LINE, 1, 0xFF)

    def _set_mask(self, offset: int, size: int, mask: int, w1c: bool = False) -> None:
        target = self.w1cmask if w1c else self.wmask
        target[offset : offset + size] = mask.to_bytes(size, "little")

    def add_bar(self, index: int, bar: Bar) -> None:
        self.bars[index] = bar
        offset = BAR0 + 4 * index
        struct.pack_into("<I", self.config, offset, bar.flags)
        address_bits = 0xFFFFFFFC if bar.io else 0xFFFFFFF0
        self._set_mask(offset, 4, address_bits & ~(bar.size - 1) & 0xFFFFFFFF)

    def add_capability(self, cap_id: int, body: bytes) -> int:
        """Append a capability (ID, next pointer, then ``body``); returns its offset."""
        offset = self._next_capability
        length = 2 + len(body)
        if offset + length > CONFIG_SIZE:
            raise ValueError("capabilities do not fit in the 256-byte configuration space")
        self.config[offset] = cap_id
        self.config[offset + 1] = 0
        self.config[offset + 2 : offset + length] = body
        if self._last_capability is None:
            self.config[CAPABILITIES_POINTER] = offset
            struct.pack_into("<H", self.config, STATUS, self.status | STATUS_CAP_LIST)
        else:
            self.config[self._last_capability + 1] = offset
        self._last_capability = offset
        self._next_capability = (offset + length + 3) & ~3
        return offset

    def seal(self) -> None:
        """The header is complete: remember it as the power-on contents."""
        self._power_on_config = bytes(self.config)

    # ---- what the bus and the device model read ----

    def u16(self, offset: int) -> int:
        return int.from_bytes(self.config[offset : offset + 2], "little")

    @property
    def vendor_id(self) -> int:
        return self.u16(VENDOR_ID)

    @property
    def device_id(self) -> int:
        return self.u16(DEVICE_ID)

    @property
    def class_code(self) -> int:
        return int.from_bytes(self.config[CLASS_PROG : CLASS_BASE + 1], "little")

    @property
    def command(self) -> int:
        return self.u16(COMMAND)

    @property
    def status(self) -> int:
        return self.u16(STATUS)

    @property
    def bus_master(self) -> bool:
        return bool(self.command & CMD_BUS_MASTER)

    @property
    def interrupt_pin(self) -> int:
        return self.config[INTERRUPT_PIN]

    def bar_address(self, index: int) -> int | None:
        """Where BAR ``index`` decodes now, or None (absent, unassigned or decode off)."""
        bar = self.bars[index]
        if bar is None:
            return None
        if not self.command & (CMD_IO if bar.io else CMD_MEMORY):
            return None
        raw = int.from_bytes(self.config[BAR0 + 4 * index : BAR0 + 4 * index + 4], "little")
        address = raw & (0xFFFFFFFC if bar.io else 0xFFFFFFF0)
        return address or None

    @property
    def intx_asserted(self) -> bool:
        """The pin as the bus sees it: the function's request unless Interrupt Disable."""
        return self.intx_level and not self.command & CMD_INTX_DISABLE

    def set_intx(self, level: bool) -> None:
        level = bool(level)
        if level == self.intx_level:
            return
        self.intx_level = level
        status = self.status | STATUS_INTERRUPT if level else self.status & ~STATUS_INTERRUPT
        struct.pack_into("<H", self.config, STATUS, status)
        self.on_intx(self)

    # ---- configuration cycles (offset and size already checked by the bus) ----

    def config_read(self, offset: int, size: int) -> int:
        return int.from_bytes(self.config[offset : offset + size], "little")

    def config_write(self, offset: int, size: int, value: int) -> None:
        before_command = self.command
        before_bars = bytes(self.config[BAR0 : BAR0 + 4 * BAR_COUNT])
        for i in range(size):
            at = offset + i
            byte = (value >> (8 * i)) & 0xFF
            old = self.config[at]
            mask = self.wmask[at]
            new = (old & ~mask) | (byte & mask)
            new &= ~(byte & self.w1cmask[at])
            self.config[at] = new & 0xFF
        self.config_written(offset, size)
        if self.command != before_command:
            if (self.command ^ before_command) & CMD_INTX_DISABLE:
                self.on_intx(self)
            self.on_decode_change()
        elif bytes(self.config[BAR0 : BAR0 + 4 * BAR_COUNT]) != before_bars:
            self.on_decode_change()

    def config_written(self, offset: int, size: int) -> None:  # noqa: B027 - optional hook
        """Called after a guest write to the configuration space (e.g. PIRQ routing)."""

    # ---- BAR accesses (offset inside the BAR; size 1, 2, 4 or 8) ----

    def bar_read(self, index: int, offset: int, size: int) -> int:
        return (1 << (8 * size)) - 1

    def bar_write(self, index: int, offset: int, size: int, value: int) -> None:  # noqa: B027 - optional
        """A write into BAR ``index``: devices with registers override this."""

    # ---- Device ----

    def reset(self) -> None:
        if self._power_on_config:
            self.config[:] = self._power_on_config
        self.intx_level = False

    def save(self) -> dict[str, Any]:
        return {"config": bytes(self.config), "intx": self.intx_level}

    def restore(self, state: dict[str, Any]) -> None:
        self.config[:] = state["config"]
        self.intx_level = bool(state["intx"])
