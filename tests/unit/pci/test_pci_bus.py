"""The PCI bus of --machine pc: configuration mechanism #1, BAR sizing and decoding,
the Command register, capability lists, PIRQ routing to the PIC, save/restore."""

from __future__ import annotations

import struct

from vmm.bus import IoBus
from vmm.devices.pci import Bar, HostBridge, PciBus, PciFunction, Piix3IsaBridge
from vmm.irq import IrqLine


class Probe(PciFunction):
    name = "probe"

    def __init__(self) -> None:
        super().__init__()
        self.init_header(0x1234, 0x5678, 0xFF0000, interrupt_pin=1)
        self.add_bar(0, Bar(0x20, io=True))
        self.add_bar(1, Bar(0x1000))
        self.add_capability(0x09, b"\x04\xaa")
        self.add_capability(0x05, bytes(8))
        self.writes: list[tuple[int, int, int, int]] = []

    def bar_read(self, index: int, offset: int, size: int) -> int:
        return 0xA0 + index * 0x10 + offset

    def bar_write(self, index: int, offset: int, size: int, value: int) -> None:
        self.writes.append((index, offset, size, value))


def make_bus():
    io = IoBus()
    levels = {}
    lines = [IrqLine(n, lambda n, level: levels.__setitem__(n, level)) for n in range(16)]
    bus = PciBus(io, 0x4000000, lines)
    bus.plug(0, HostBridge())
    router = Piix3IsaBridge(bus)
    bus.plug(1, router)
    bus.set_pirq_router(router)
    probe = Probe()
    bus.plug(3, probe)
    for first, count in bus.ports:
        io.register(first, count, bus)
    bus.reset()
    return io, bus, probe, levels


def cfg_read(io, slot, offset, size=4, function=0):
    io.write(0xCF8, 4, 0x80000000 | slot << 11 | function << 8 | (offset & 0xFC))
    return io.read(0xCFC + (offset & 3), size)


def cfg_write(io, slot, offset, value, size=4):
    io.write(0xCF8, 4, 0x80000000 | slot << 11 | (offset & 0xFC))
    io.write(0xCFC + (offset & 3), size, value)


def test_mechanism_1_finds_the_host_bridge_router_and_device_and_nothing_else():
    io, _bus, _probe, _ = make_bus()
    io.write(0xCF8, 4, 0x80000000)
    assert io.read(0xCF8, 4) == 0x80000000  # Linux's pci_check_type1 reads the address back
    assert cfg_read(io, 0, 0) == 0x12378086
    assert cfg_read(io, 0, 8) >> 8 == 0x060000  # host bridge class
    assert cfg_read(io, 1, 0) == 0x70008086
    assert cfg_read(io, 1, 0x0E, 1) & 0x80  # PIIX3 is multi-function
    assert cfg_read(io, 3, 0) == 0x56781234
    assert cfg_read(io, 2, 0) == 0xFFFFFFFF  # empty slot
    assert cfg_read(io, 3, 0, function=1) == 0xFFFFFFFF  # single-function device
    io.write(0xCF8, 4, 0x00000000)  # enable bit clear: no configuration cycle
    assert io.read(0xCFC, 4) == 0xFFFFFFFF
    io.write(0xCF8, 4, 0x80010000)  # bus 1 does not exist
    assert io.read(0xCFC, 4) == 0xFFFFFFFF
    assert cfg_read(io, 3, 2, 2) == 0x5678  # word at offset 2 through port 0xCFE
    assert cfg_read(io, 3, 1, 1) == 0x12


def test_read_only_fields_stay_and_bars_size_by_writing_all_ones():
    io, _bus, _probe, _ = make_bus()
    cfg_write(io, 3, 0, 0xFFFFFFFF)
    assert cfg_read(io, 3, 0) == 0x56781234
    cfg_write(io, 3, 0x10, 0xFFFFFFFF)
    assert cfg_read(io, 3, 0x10) == 0xFFFFFFE1  # 32 ports, I/O space indicator
    cfg_write(io, 3, 0x14, 0xFFFFFFFF)
    assert cfg_read(io, 3, 0x14) == 0xFFFFF000  # 4 KiB memory, 32-bit, not prefetchable
    for offset in (0x18, 0x1C, 0x20, 0x24):
        cfg_write(io, 3, offset, 0xFFFFFFFF)
        assert cfg_read(io, 3, offset) == 0  # unimplemented BARs read zero


def test_capability_list_is_walkable():
    io, _bus, _probe, _ = make_bus()
    assert cfg_read(io, 3, 6, 2) & 0x10  # Status: Capabilities List
    pointer = cfg_read(io, 3, 0x34, 1)
    seen = []
    while pointer:
        seen.append(cfg_read(io, 3, pointer, 1))
        pointer = cfg_read(io, 3, pointer + 1, 1)
    assert seen == [0x09, 0x05]


def test_command_register_gates_decode_and_bars_move():
    io, bus, probe, _ = make_bus()
    cfg_write(io, 3, 0x10, 0xC000)
    cfg_write(io, 3, 0x14, 0xE0001000)
    assert io.read(0xC004, 1) == 0xFF  # decode off
    assert bus.mmio_read(0xE0001000 - bus.mmio_base, 4) == 0xFFFFFFFF
    cfg_write(io, 3, 4, 0x3, 2)
    assert io.read(0xC004, 1) == 0xA4
    assert bus.mmio_read(0xE0001008 - bus.mmio_base, 4) == 0xB8
    bus.mmio_write(0xE0001010 - bus.mmio_base, 2, 0x55)
    assert probe.writes[-1] == (1, 0x10, 2, 0x55)
    cfg_write(io, 3, 0x10, 0xD000)  # move the I/O BAR
    assert io.read(0xC004, 1) == 0xFF and io.read(0xD004, 1) == 0xA4
    cfg_write(io, 3, 4, 0x1, 2)  # memory decode off
    assert bus.mmio_read(0xE0001008 - bus.mmio_base, 4) == 0xFFFFFFFF
    cfg_write(io, 3, 0x10, 0x0060)  # over the 8042: the ISA device keeps its ports
    assert io.device_at(0x60) is None or io.device_at(0x60) is not bus


def test_intx_goes_through_the_pirq_router_and_interrupt_disable():
    io, _bus, probe, levels = make_bus()
    link = (3 - 1 + 0) & 3  # slot 3, INTA#: PIRQ D... as QEMU's i440FX swizzle
    probe.set_intx(True)
    assert not any(levels.values())  # routing disabled at power-on
    cfg_write(io, 1, 0x60 + link, 11, 1)
    assert levels[11] is True
    assert cfg_read(io, 3, 6, 2) & 0x08  # Status: Interrupt Status
    cfg_write(io, 3, 4, 0x400, 2)  # Interrupt Disable
    assert levels[11] is False
    cfg_write(io, 3, 4, 0, 2)
    assert levels[11] is True
    probe.set_intx(False)
    assert levels[11] is False
    cfg_write(io, 1, 0x60 + link, 13, 1)  # IRQ 13 cannot be routed
    probe.set_intx(True)
    assert levels.get(13) is None and levels[11] is False


def test_save_restore_keeps_assignments_and_decode():
    io, bus, probe, _ = make_bus()
    cfg_write(io, 3, 0x10, 0xC000)
    cfg_write(io, 3, 4, 0x1, 2)
    cfg_write(io, 1, 0x60, 10, 1)
    state = bus.save()
    io2, bus2, _probe2, _ = make_bus()
    bus2.restore(state)
    assert io2.read(0xC004, 1) == 0xA4
    assert cfg_read(io2, 1, 0x60, 1) == 10
    assert struct.unpack("<I", bytes(bus2.functions[(3, 0)].config[0x10:0x14]))[0] == 0xC001
