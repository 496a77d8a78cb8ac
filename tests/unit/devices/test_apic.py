"""The local APIC and the I/O APIC on their own (vmm/devices/apic.py, ioapic.py): what
the conformance ROMs cannot compare with QEMU (the ESR, logical destinations, ExtINT
through LINT0), save/restore, and hostile register traffic."""

from __future__ import annotations

import random

from vmm.clock import VirtualClock
from vmm.devices.apic import LocalApic
from vmm.devices.ioapic import IoApic


class FakePic:
    def __init__(self) -> None:
        self.output = False
        self.acks = 0

    def acknowledge(self) -> int:
        self.acks += 1
        return 0x08


def make() -> tuple[VirtualClock, FakePic, LocalApic, IoApic]:
    clock = VirtualClock(100)
    pic = FakePic()
    lapic = LocalApic(clock, pic)
    ioapic = IoApic(lapic)
    lapic.eoi_broadcast = ioapic.eoi
    return clock, pic, lapic, ioapic


def test_illegal_vectors_and_registers_are_latched_in_the_esr_by_a_write() -> None:
    _, _, lapic, _ = make()
    lapic.mmio_write(0xF0, 4, 0x1FF)
    lapic.mmio_write(0x300, 4, 0x00040005)  # self-IPI, vector 5: illegal
    lapic.mmio_read(0x2F0, 4)  # no register there
    assert lapic.mmio_read(0x280, 4) == 0  # not yet latched
    lapic.mmio_write(0x280, 4, 0)
    assert lapic.mmio_read(0x280, 4) == 0xA0  # send illegal vector, illegal register address
    lapic.mmio_write(0x280, 4, 0)
    assert lapic.mmio_read(0x280, 4) == 0


def test_the_8259a_reaches_the_cpu_through_lint0_extint_only() -> None:
    _, pic, lapic, _ = make()
    outputs = []
    lapic.on_output = outputs.append
    pic.output = True
    lapic.pic_output_changed(True)
    assert not lapic.output  # LINT0 masked after reset, as in QEMU
    lapic.virtual_wire()
    assert lapic.output
    assert lapic.acknowledge() == 0x08 and pic.acks == 1  # answered by the PIC
    pic.output = False
    lapic.pic_output_changed(False)
    assert outputs == [True, False]


def test_logical_flat_destination_and_level_trigger_through_the_ioapic() -> None:
    _, _, lapic, ioapic = make()
    lapic.mmio_write(0xF0, 4, 0x1FF)
    lapic.mmio_write(0xE0, 4, 0xFFFFFFFF)  # flat model
    lapic.mmio_write(0xD0, 4, 0x01000000)  # logical id bit 0
    ioapic.mmio_write(0, 4, 0x10 + 2 * 5)
    ioapic.mmio_write(0x10, 4, 0x00000855)  # vector 55h, logical, edge
    ioapic.mmio_write(0, 4, 0x10 + 2 * 5 + 1)
    ioapic.mmio_write(0x10, 4, 0x02000000)  # logical destination 2: not this CPU
    ioapic.set_isa_irq(5, True)
    assert not lapic.output
    ioapic.mmio_write(0, 4, 0x10 + 2 * 9)
    ioapic.mmio_write(0x10, 4, 0x0000A861)  # vector 61h, logical, level, active low (ignored)
    ioapic.mmio_write(0, 4, 0x10 + 2 * 9 + 1)
    ioapic.mmio_write(0x10, 4, 0x01000000)  # logical destination 1: this CPU
    ioapic.set_isa_irq(9, True)
    assert lapic.output
    assert lapic.acknowledge() == 0x61
    assert ioapic.redirection[9] & (1 << 14)  # remote IRR
    ioapic.set_isa_irq(9, False)
    lapic.mmio_write(0xB0, 4, 0)  # EOI: broadcast (TMR set), remote IRR clears
    assert not ioapic.redirection[9] & (1 << 14)
    assert not lapic.output


def test_saved_then_restored_apics_behave_identically() -> None:
    clock, _, lapic, ioapic = make()
    lapic.mmio_write(0xF0, 4, 0x1FF)
    lapic.mmio_write(0x3E0, 4, 0x3)
    lapic.mmio_write(0x320, 4, 0x20040)
    lapic.mmio_write(0x380, 4, 1000)
    ioapic.mmio_write(0, 4, 0x14)
    ioapic.mmio_write(0x10, 4, 0x50)
    saved = (lapic.save(), ioapic.save())
    clock2, _, lapic2, ioapic2 = make()
    lapic2.restore(saved[0])
    ioapic2.restore(saved[1])
    assert (lapic2.save(), ioapic2.save()) == saved
    assert clock2.next_deadline_ns() == clock.next_deadline_ns() == (1000 + 1) << 4


def test_random_register_traffic_never_raises() -> None:
    rng = random.Random(20)
    _, pic, lapic, ioapic = make()
    for _ in range(20_000):
        device = lapic if rng.random() < 0.6 else ioapic
        offset = rng.randrange(0x1000)
        size = rng.choice((1, 2, 4, 8))
        if rng.random() < 0.5:
            device.mmio_read(offset, size)
        else:
            device.mmio_write(offset, size, rng.getrandbits(8 * size))
        if rng.random() < 0.05:
            ioapic.set_isa_irq(rng.randrange(-2, 30), rng.random() < 0.5)
        if rng.random() < 0.05 and lapic.output:
            lapic.acknowledge()
        pic.output = rng.random() < 0.1
