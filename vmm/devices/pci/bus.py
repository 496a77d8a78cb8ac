"""PCI bus 0 of a PC: configuration mechanism #1, BAR decoding, INTx routing.

Sources: PCI Local Bus Specification 3.0, 3.2.2.3.2 (configuration mechanism #1: the
CONFIG_ADDRESS register at 0xCF8 — enable bit 31, bus 23:16, device 15:11, function
10:8, register 7:2 — and CONFIG_DATA at 0xCFC-0xCFF); Intel 82371SB (PIIX3) datasheet,
2.2.8 (PIRQ route control registers PIRQRC[A:D] at 0x60-0x63: bit 7 disables the route,
bits 3:0 name the ISA IRQ). QEMU's i440FX machine wires slot ``s``'s pin ``p`` (0 = INTA#)
to PIRQ link ``(s - 1 + p) & 3``; vmm does the same, so the BIOS routes both alike.

The bus answers configuration cycles for the functions plugged into it (reads of an
empty slot return all ones, so Vendor ID 0xFFFF), maps each function's I/O BARs onto the
port bus and its memory BARs inside the PCI memory window it owns above RAM, whenever
the guest moves a BAR or flips the Command register's decode bits. A memory access in
the window that no BAR decodes reads all ones, like the rest of the hole.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from vmm.bus import IoBus, all_ones
from vmm.devices.base import Device
from vmm.devices.pci.function import HEADER_MULTIFUNCTION, HEADER_TYPE, PciFunction
from vmm.irq import IrqLine

CONFIG_ADDRESS, CONFIG_DATA = 0xCF8, 0xCFC
CONFIG_ENABLE = 0x80000000
SLOTS, FUNCTIONS = 32, 8
PIRQ_ROUTE = 0x60  # PIIX3 PIRQRC[A:D]
PIRQ_DISABLED = 0x80
PIRQ_LINKS = 4
ROUTABLE_IRQS = frozenset((3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15))
PCI_MMIO_END = 0xFEC00000  # the I/O APIC's page starts here


def pirq_link(slot: int, pin: int) -> int:
    """The PIRQ link (0 = PIRQA) of ``pin`` (1 = INTA#) on ``slot``, as on QEMU's i440FX."""
    return (slot - 1 + pin - 1) & 3


@dataclass(frozen=True)
class BarMapping:
    function: PciFunction
    index: int
    base: int
    size: int


class _IoBarWindow:
    """What the port bus sees of one I/O BAR."""

    def __init__(self, mapping: BarMapping) -> None:
        self.mapping = mapping

    def io_read(self, port: int, size: int) -> int:
        m = self.mapping
        return m.function.bar_read(m.index, port - m.base, size)

    def io_write(self, port: int, size: int, value: int) -> None:
        m = self.mapping
        m.function.bar_write(m.index, port - m.base, size, value)

    def __repr__(self) -> str:
        m = self.mapping
        return f"PCI {m.function.slot:02x}.{m.function.function} BAR{m.index}"


class PciBus(Device):
    """Bus 0: the host bridge's CONFIG_ADDRESS/CONFIG_DATA ports, slots, decoding, INTx."""

    name = "pci"
    ports = ((CONFIG_ADDRESS, 4), (CONFIG_DATA, 4))

    def __init__(self, io: IoBus, mmio_base: int, irq_lines: list[IrqLine]) -> None:
        self.io = io
        self.mmio_base = mmio_base
        self.mmio_size = PCI_MMIO_END - mmio_base
        self.irq_lines = irq_lines  # ISA IRQ 0-15 as the PCI side drives them
        self.functions: dict[tuple[int, int], PciFunction] = {}
        self.config_address = 0
        self.pirq_router: PciFunction | None = None
        self._io_windows: list[tuple[int, int, _IoBarWindow]] = []
        self._mem_mappings: list[BarMapping] = []
        self._irq_levels = [False] * 16

    # ---- wiring ----

    def plug(self, slot: int, function: PciFunction, number: int = 0) -> None:
        if not 0 <= slot < SLOTS or not 0 <= number < FUNCTIONS:
            raise ValueError(f"no PCI slot {slot}.{number}")
        if (slot, number) in self.functions:
            raise ValueError(f"PCI slot {slot:02x}.{number} is taken")
        function.slot, function.function = slot, number
        function.on_intx = lambda _f: self._route_intx()
        function.on_decode_change = self.remap
        function.seal()
        self.functions[(slot, number)] = function

    def set_pirq_router(self, function: PciFunction) -> None:
        self.pirq_router = function

    def devices(self) -> list[PciFunction]:
        return [self.functions[key] for key in sorted(self.functions)]

    # ---- configuration mechanism #1 ----

    def io_read(self, port: int, size: int) -> int:
        if CONFIG_ADDRESS <= port < CONFIG_ADDRESS + 4:
            if port == CONFIG_ADDRESS and size == 4:
                return self.config_address
            return all_ones(size)  # byte/word accesses to 0xCF8 are not configuration cycles
        target = self._target(port, size)
        if target is None:
            return all_ones(size)
        function, offset = target
        return function.config_read(offset, size)

    def io_write(self, port: int, size: int, value: int) -> None:
        if CONFIG_ADDRESS <= port < CONFIG_ADDRESS + 4:
            if port == CONFIG_ADDRESS and size == 4:
                self.config_address = value & 0x80FFFFFC
            return
        target = self._target(port, size)
        if target is not None:
            function, offset = target
            function.config_write(offset, size, value)

    def _target(self, port: int, size: int) -> tuple[PciFunction, int] | None:
        address = self.config_address
        if not address & CONFIG_ENABLE or (address >> 16) & 0xFF != 0:
            return None
        offset = (address & 0xFC) + (port - CONFIG_DATA)
        if offset % size or (port - CONFIG_DATA) + size > 4:
            return None  # an access that straddles the data window reaches no register
        slot, number = (address >> 11) & 0x1F, (address >> 8) & 7
        function = self.functions.get((slot, number))
        if function is None:
            return None
        if number and not self._multifunction(slot):
            return None
        return function, offset

    def _multifunction(self, slot: int) -> bool:
        first = self.functions.get((slot, 0))
        return first is not None and bool(first.config[HEADER_TYPE] & HEADER_MULTIFUNCTION)

    # ---- BAR decoding ----

    def remap(self) -> None:
        """Recompute which ports and addresses each BAR decodes."""
        for base, count, window in self._io_windows:
            self.io.unregister(base, count, window)
        self._io_windows = []
        self._mem_mappings = []
        for function in self.devices():
            for index, bar in enumerate(function.bars):
                base = function.bar_address(index)
                if bar is None or base is None:
                    continue
                mapping = BarMapping(function, index, base, bar.size)
                if bar.io:
                    if base + bar.size > 0x10000:
                        continue
                    window = _IoBarWindow(mapping)
                    if self.io.claim(base, bar.size, window):  # a port already taken wins
                        self._io_windows.append((base, bar.size, window))
                elif self.mmio_base <= base and base + bar.size <= PCI_MMIO_END:
                    if not any(base < m.base + m.size and m.base < base + bar.size for m in self._mem_mappings):
                        self._mem_mappings.append(mapping)

    def mmio_read(self, offset: int, size: int) -> int:
        mapping, inside = self._find(self.mmio_base + offset, size)
        if mapping is None:
            return all_ones(size)
        return mapping.function.bar_read(mapping.index, inside, size)

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        mapping, inside = self._find(self.mmio_base + offset, size)
        if mapping is not None:
            mapping.function.bar_write(mapping.index, inside, size, value)

    def _find(self, address: int, size: int) -> tuple[BarMapping | None, int]:
        for mapping in self._mem_mappings:
            inside = address - mapping.base
            if 0 <= inside and inside + size <= mapping.size:
                return mapping, inside
        return None, 0

    # ---- INTx through the PIRQ router ----

    def pirq_irq(self, link: int) -> int | None:
        """The ISA IRQ PIRQ ``link`` is routed to, or None (disabled or not routable)."""
        if self.pirq_router is None:
            return None
        route = self.pirq_router.config[PIRQ_ROUTE + link]
        irq = route & 0x0F
        if route & PIRQ_DISABLED or irq not in ROUTABLE_IRQS:
            return None
        return irq

    def _route_intx(self, drive: bool = True) -> None:
        links = [False] * PIRQ_LINKS
        for function in self.functions.values():
            pin = function.interrupt_pin
            if 1 <= pin <= 4 and function.intx_asserted:
                links[pirq_link(function.slot, pin)] = True
        levels = [False] * 16
        for link, asserted in enumerate(links):
            irq = self.pirq_irq(link)
            if asserted and irq is not None:
                levels[irq] = True
        for irq in range(16):
            if not drive:  # restoring: the PIC's saved state already holds the inputs
                self.irq_lines[irq].level = levels[irq]
            elif levels[irq] != self._irq_levels[irq]:
                self.irq_lines[irq].set(levels[irq])
            self._irq_levels[irq] = levels[irq]

    def routing_changed(self) -> None:
        self._route_intx()

    # ---- Device ----

    def reset(self) -> None:
        self.config_address = 0
        for function in self.functions.values():
            function.reset()
        self.remap()
        self._route_intx()

    def save(self) -> dict[str, Any]:
        return {
            "config_address": self.config_address,
            "functions": {f"{slot:02x}.{number}": f.save() for (slot, number), f in self.functions.items()},
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.config_address = state["config_address"]
        for (slot, number), function in self.functions.items():
            function.restore(state["functions"][f"{slot:02x}.{number}"])
        self.remap()
        self._route_intx(drive=False)


class HostBridge(PciFunction):
    """The i440FX-like host bridge at 00.0 (8086:1237, class 06 00 00)."""

    name = "pci-host"

    def __init__(self) -> None:
        super().__init__()
        self.init_header(0x8086, 0x1237, 0x060000, revision=2)


class Piix3IsaBridge(PciFunction):
    """The PIIX3 PCI-to-ISA bridge at 01.0 (8086:7000): its PIRQ route registers."""

    name = "pci-isa"

    def __init__(self, bus: PciBus) -> None:
        super().__init__()
        self.init_header(0x8086, 0x7000, 0x060100, header_type=HEADER_MULTIFUNCTION)
        self.config[PIRQ_ROUTE : PIRQ_ROUTE + PIRQ_LINKS] = bytes([PIRQ_DISABLED] * PIRQ_LINKS)
        self.wmask[PIRQ_ROUTE : PIRQ_ROUTE + PIRQ_LINKS] = bytes([0x8F] * PIRQ_LINKS)
        self._bus = bus

    def config_written(self, offset: int, size: int) -> None:
        if offset < PIRQ_ROUTE + PIRQ_LINKS and PIRQ_ROUTE < offset + size:
            self._bus.routing_changed()


def describe(function: PciFunction) -> str:
    """One line as `lspci -n` would start it, plus the BARs and the IRQ."""
    parts = [f"00:{function.slot:02x}.{function.function}",
             f"{function.class_code >> 8:04x}: {function.vendor_id:04x}:{function.device_id:04x}"]  # fmt: skip
    for index, bar in enumerate(function.bars):
        if bar is not None:
            raw = struct.unpack_from("<I", function.config, 0x10 + 4 * index)[0]
            kind = "I/O" if bar.io else "mem"
            parts.append(f"BAR{index} {kind} {raw & ~0xF:#x} ({bar.size:#x})")
    if function.interrupt_pin:
        parts.append(f"INT{'ABCD'[function.interrupt_pin - 1]}# IRQ {function.config[0x3C]}")
    return "  ".join(parts)
