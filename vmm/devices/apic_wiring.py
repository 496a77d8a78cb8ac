"""How the `pc` machine wires its interrupt controllers (the board's part, kept out of
vmm/machine.py): the 8259A's INTR goes to the local APIC's LINT0, every ISA line to both
the 8259A and the I/O APIC (IRQ 0 on input 2), both APICs' registers on the MMIO bus, and
the I/O APIC's level-triggered entries hear the local APIC's EOI broadcast. The CPU's
INTR and INTA then talk to the local APIC (docs/design-notes.md, "APICs")."""

from __future__ import annotations

from collections.abc import Callable

from vmm.bus import MmioBus
from vmm.clock import VirtualClock
from vmm.devices.apic import APIC_BASE, APIC_WINDOW, LocalApic
from vmm.devices.ioapic import IOAPIC_BASE, IOAPIC_WINDOW, IoApic
from vmm.devices.pic8259 import Pic8259Pair


def wire_apics(clock: VirtualClock, pic: Pic8259Pair,
               mmio: MmioBus) -> tuple[LocalApic, IoApic, Callable[[int, bool], None]]:  # fmt: skip
    """The two APICs, wired; returns them and the sink every ISA IRQ line drives."""
    lapic = LocalApic(clock, pic)
    ioapic = IoApic(lapic)
    lapic.eoi_broadcast = ioapic.eoi
    pic.on_output = lapic.pic_output_changed
    mmio.register(APIC_BASE, APIC_WINDOW, lapic)
    mmio.register(IOAPIC_BASE, IOAPIC_WINDOW, ioapic)
    pic_irq, ioapic_irq = pic.set_irq, ioapic.set_isa_irq

    def both(line: int, level: bool) -> None:
        pic_irq(line, level)
        ioapic_irq(line, level)

    return lapic, ioapic, both
