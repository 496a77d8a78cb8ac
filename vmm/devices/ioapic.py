"""The I/O APIC (Intel 82093AA datasheet, 1996), version 0x20 as QEMU's, at 0xFEC00000.

Emulated: IOREGSEL/IOWIN (and the EOI register at 0x40 of version 0x20), the ID,
version and arbitration registers, 24 redirection entries (vector, delivery mode,
physical/logical destination, polarity, trigger mode, mask; delivery status and remote
IRR read-only), edge inputs latched only while unmasked (82093AA, 3.2.4), level inputs
with remote IRR, cleared by the local APIC's EOI broadcast or the EOI register, and
re-sent while the line stays high. As in QEMU (hw/intc/ioapic.c), ISA IRQ 0 (the PIT)
arrives on pin 2 and the PC's lines are active high whatever the polarity bit says.

Messages go to the one local APIC of this machine when its destination matches.
"""

from __future__ import annotations

from typing import Any

from vmm.devices.apic import DM_EXTINT, LocalApic
from vmm.devices.base import Device

IOAPIC_BASE = 0xFEC00000
IOAPIC_WINDOW = 0x1000
IOAPIC_PINS = 24
IOAPIC_VERSION = 0x20
IOAPIC_ID = 0  # QEMU's I/O APIC id on -M pc (the MP table says the same)

RTE_MASKED = 1 << 16
RTE_LEVEL = 1 << 15
RTE_REMOTE_IRR = 1 << 14
RTE_DELIVERY_STATUS = 1 << 12
RTE_DEST_LOGICAL = 1 << 11
RTE_READ_ONLY = RTE_REMOTE_IRR | RTE_DELIVERY_STATUS
RTE_WRITABLE = 0xFF00_0000_0001_AFFF  # destination, mask, trigger, polarity, modes, vector

REG_ID, REG_VERSION, REG_ARBITRATION, REG_REDIRECTION = 0x00, 0x01, 0x02, 0x10


def pin_of_isa_irq(irq: int) -> int:
    """The input an ISA IRQ drives (the MP table's interrupt source override for IRQ 0)."""
    return 2 if irq == 0 else irq


class IoApic(Device):
    name = "ioapic"
    ports: tuple = ()  # registers are memory-mapped only

    def __init__(self, lapic: LocalApic) -> None:
        self.lapic = lapic
        self.reset()

    def reset(self) -> None:
        self.id = IOAPIC_ID
        self.ioregsel = 0
        self.irr = 0  # inputs waiting to be sent
        self.levels = 0  # the input lines as they are now
        self.redirection = [RTE_MASKED] * IOAPIC_PINS

    def save(self) -> dict[str, Any]:
        return {"id": self.id, "ioregsel": self.ioregsel, "irr": self.irr, "levels": self.levels,
                "redirection": list(self.redirection)}  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        self.id = int(state["id"])
        self.ioregsel = int(state["ioregsel"]) & 0xFF
        self.irr = int(state["irr"])
        self.levels = int(state["levels"])
        self.redirection = [int(v) for v in state["redirection"]][:IOAPIC_PINS]

    # ---- inputs ----

    def set_isa_irq(self, irq: int, level: bool) -> None:
        self.set_pin(pin_of_isa_irq(irq), level)

    def set_pin(self, pin: int, level: bool) -> None:
        if not 0 <= pin < IOAPIC_PINS:
            return
        bit = 1 << pin
        self.levels = self.levels | bit if level else self.levels & ~bit
        entry = self.redirection[pin]
        if entry & RTE_LEVEL:
            if level:
                self.irr |= bit
                if not entry & RTE_REMOTE_IRR:
                    self._service()
            else:
                self.irr &= ~bit
        elif level and not entry & RTE_MASKED:
            self.irr |= bit
            self._service()

    def _service(self) -> None:
        pending = self.irr
        while pending:
            pin = pending.bit_length() - 1
            pending &= ~(1 << pin)
            entry = self.redirection[pin]
            if entry & RTE_MASKED:
                continue
            level = bool(entry & RTE_LEVEL)
            if level:
                if entry & RTE_REMOTE_IRR:
                    continue  # the CPU is still on the previous one
                self.redirection[pin] = entry | RTE_REMOTE_IRR
            else:
                self.irr &= ~(1 << pin)
            self._send(entry, level)

    def _send(self, entry: int, level: bool) -> None:
        if not self.lapic.matches(entry >> 56, bool(entry & RTE_DEST_LOGICAL)):
            return
        mode = (entry >> 8) & 7
        self.lapic.deliver(mode, entry & 0xFF, level and mode != DM_EXTINT)

    def eoi(self, vector: int) -> None:
        """The local APIC's EOI of a level-triggered ``vector`` (or a write to the EOI
        register): clear remote IRR on the entries with that vector, and send again
        when the line is still high."""
        resend = False
        for pin, entry in enumerate(self.redirection):
            if entry & 0xFF != vector or not entry & RTE_LEVEL or not entry & RTE_REMOTE_IRR:
                continue
            self.redirection[pin] = entry & ~RTE_REMOTE_IRR
            if not entry & RTE_MASKED and self.irr >> pin & 1:
                resend = True
        if resend:
            self._service()

    # ---- registers ----

    def mmio_read(self, offset: int, size: int) -> int:
        if offset == 0x00:
            return self.ioregsel
        if 0x10 <= offset < 0x14:
            return self._read_register() >> (8 * (offset - 0x10))
        return 0

    def _read_register(self) -> int:
        sel = self.ioregsel
        if sel == REG_ID:
            return self.id << 24
        if sel == REG_VERSION:
            return (IOAPIC_PINS - 1) << 16 | IOAPIC_VERSION
        if sel == REG_ARBITRATION:
            return 0
        index = (sel - REG_REDIRECTION) >> 1
        if 0 <= index < IOAPIC_PINS:
            entry = self.redirection[index]
            return (entry >> 32) & 0xFFFFFFFF if sel & 1 else entry & 0xFFFFFFFF
        return 0xFFFFFFFF

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        if offset == 0x00:
            self.ioregsel = value & 0xFF
        elif offset == 0x10:
            self._write_register(value & 0xFFFFFFFF)
        elif offset == 0x40:
            self.eoi(value & 0xFF)

    def _write_register(self, value: int) -> None:
        sel = self.ioregsel
        if sel == REG_ID:
            self.id = (value >> 24) & 0xF
            return
        index = (sel - REG_REDIRECTION) >> 1
        if not 0 <= index < IOAPIC_PINS:
            return
        entry = self.redirection[index]
        if sel & 1:
            new = (entry & 0xFFFFFFFF) | value << 32
        else:
            new = (entry & ~0xFFFFFFFF) | value
        new = (new & RTE_WRITABLE) | (entry & RTE_READ_ONLY)
        if not new & RTE_LEVEL:
            new &= ~RTE_REMOTE_IRR  # an edge entry has no remote IRR (QEMU too)
        self.redirection[index] = new
        bit = 1 << index
        if new & RTE_LEVEL and self.levels & bit:
            self.irr |= bit
        self._service()
