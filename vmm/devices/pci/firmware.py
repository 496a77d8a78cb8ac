"""The PCI set-up vmm's BIOS does at POST, for a machine booted without firmware.

``vmm run --machine pc --kernel ...`` starts the kernel straight after reset, so nobody
has assigned BARs or routed interrupts: the devices would sit at address 0 with decoding
off, and a kernel that trusts the firmware (Linux without ACPI, the toy OS) would not find
them. :func:`configure_like_bios` does what ``firmware/pci.S`` does, through the same
configuration mechanism #1 cycles a BIOS uses:

- PIIX3 at 01.0: PIRQ A-D routed to IRQ 10, 11, 10, 11, both level-triggered in the ELCR;
- every type 0 function: BARs sized (all ones written, the mask read back) and given the
  next naturally aligned address, I/O from 0xC000 and memory from 0xE0000000 (a 64-bit
  BAR's upper half 0), I/O and memory decode turned on as the BARs need;
- the Interrupt Line of each function with an interrupt pin (0xFF without one);
- the ``$PIR`` routing table (Microsoft's PCI IRQ Routing Table Specification 1.0), the
  BIOS's own bytes, copied to 0xF0000 (reserved in the E820 map the loaders give), where
  Linux searches for it.
"""

from __future__ import annotations

import struct

CONFIG_ADDRESS, CONFIG_DATA = 0xCF8, 0xCFC
ELCR2 = 0x4D1
PCI_IO_START = 0xC000
PCI_MEM_START = 0xE0000000
PIRQ_IRQS = (10, 11, 10, 11)
PIIX3_ID = 0x70008086
PIIX3_PIRQRC = 0x60
PIR_ADDRESS = 0xF0000
PIR_SLOTS = 31
PIR_BITMAP = 0xDEB8  # IRQ 3-5, 7, 9-12, 14, 15


class _Config:
    """Configuration cycles through the machine's port bus, as the BIOS makes them."""

    def __init__(self, io) -> None:
        self.io = io

    def _select(self, slot: int, function: int, offset: int) -> None:
        self.io.write(CONFIG_ADDRESS, 4, 0x80000000 | slot << 11 | function << 8 | (offset & 0xFC))

    def read32(self, slot: int, function: int, offset: int) -> int:
        self._select(slot, function, offset)
        return self.io.read(CONFIG_DATA, 4)

    def write32(self, slot: int, function: int, offset: int, value: int) -> None:
        self._select(slot, function, offset)
        self.io.write(CONFIG_DATA, 4, value & 0xFFFFFFFF)

    def read8(self, slot: int, function: int, offset: int) -> int:
        return (self.read32(slot, function, offset) >> (8 * (offset & 3))) & 0xFF

    def write8(self, slot: int, function: int, offset: int, value: int) -> None:
        self._select(slot, function, offset)
        self.io.write(CONFIG_DATA + (offset & 3), 1, value)


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) & ~(alignment - 1)


def pirq_irq(slot: int, pin: int) -> int:
    """The ISA IRQ of ``pin`` (1 = INTA#) on ``slot``: the swizzle, then PIRQ_IRQS."""
    return PIRQ_IRQS[(slot - 1 + pin - 1) & 3]


def pir_table() -> bytes:
    """The $PIR table of firmware/pci.S: the router at 01.0, one entry per slot 1-31."""
    size = 32 + 16 * PIR_SLOTS
    header = bytearray(b"$PIR" + struct.pack("<HHBBHII", 0x0100, size, 0, 0x08, 0, PIIX3_ID, 0) + bytes(12))
    slots = bytearray()
    for slot in range(1, PIR_SLOTS + 1):
        slots += bytes((0, slot << 3))
        for pin in range(4):
            slots += struct.pack("<BH", PIIX3_PIRQRC + ((slot - 1 + pin) & 3), PIR_BITMAP)
        slots += bytes((slot, 0))
    header[31] = -(sum(header) + sum(slots)) & 0xFF
    return bytes(header + slots)


def configure_like_bios(io, memory, write_pir: bool = True) -> list[str]:
    """Set up bus 0 as vmm's BIOS does; return its listing (``PCI 00:02.0 1AF4:1042 ...``)."""
    config = _Config(io)
    if config.read32(1, 0, 0) == PIIX3_ID:
        config.write32(1, 0, PIIX3_PIRQRC, int.from_bytes(bytes(PIRQ_IRQS), "little"))
        elcr = io.read(ELCR2, 1)
        io.write(ELCR2, 1, elcr | (1 << (PIRQ_IRQS[0] - 8)) | (1 << (PIRQ_IRQS[1] - 8)))
    next_io, next_mem = PCI_IO_START, PCI_MEM_START
    listing = []
    for slot in range(32):
        for function in range(8):
            ident = config.read32(slot, function, 0)
            if ident & 0xFFFF == 0xFFFF:
                if function == 0:
                    break
                continue
            header_type = config.read8(slot, function, 0x0E)
            if header_type & 0x7F == 0:
                next_io, next_mem = _assign_bars(config, slot, function, next_io, next_mem)
                pin = config.read8(slot, function, 0x3D)
                irq = pirq_irq(slot, pin) if 1 <= pin <= 4 else 0xFF
                config.write8(slot, function, 0x3C, irq)
                class_code = config.read32(slot, function, 8) >> 16
                line = f"PCI 00:{slot:02X}.{function} {ident & 0xFFFF:04X}:{ident >> 16:04X} class {class_code:04X}"
                listing.append(line + (f" IRQ {irq}" if irq != 0xFF else ""))
            if function == 0 and not header_type & 0x80:
                break
    io.write(CONFIG_ADDRESS, 4, 0)
    if write_pir and memory.contains(PIR_ADDRESS, 0x10000):
        memory.write(PIR_ADDRESS, pir_table())
    return listing


def _assign_bars(config: _Config, slot: int, function: int, next_io: int, next_mem: int) -> tuple[int, int]:
    decode = 0
    offset = 0x10
    while offset < 0x28:
        original = config.read32(slot, function, offset)
        config.write32(slot, function, offset, 0xFFFFFFFF)
        mask = config.read32(slot, function, offset)
        if mask == 0:
            config.write32(slot, function, offset, original)
        elif original & 1:
            size = (~(mask & 0xFFFC | 0xFFFF0000) + 1) & 0xFFFFFFFF
            next_io = _align(next_io, size)
            config.write32(slot, function, offset, next_io)
            next_io += size
            decode |= 1
        else:
            size = (~(mask & 0xFFFFFFF0) + 1) & 0xFFFFFFFF
            next_mem = _align(next_mem, size)
            config.write32(slot, function, offset, next_mem)
            next_mem += size
            decode |= 2
            if original & 6 == 4:  # 64-bit: the next BAR holds bits 63:32
                offset += 4
                config.write32(slot, function, offset, 0)
        offset += 4
    if decode:
        command = config.read32(slot, function, 4)
        config.write32(slot, function, 4, (command & 0xFFFF) | decode)
    return next_io, next_mem
