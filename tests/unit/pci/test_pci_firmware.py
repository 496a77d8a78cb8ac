"""`--kernel` on the pc machine: the PCI bus is left as vmm's BIOS leaves it at POST.

One machine runs the BIOS (no disk: it lists the bus and halts); another boots the
Multiboot test kernel directly, and vmm.devices.pci.firmware sets the bus up instead.
Every function's configuration space, the PIRQ routing, the ELCR and the $PIR table must
be the same, and the set-up's listing is the BIOS's ``PCI ...`` lines.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, require_file
from vmm.config import DiskConfig, MachineConfig, NicConfig, SerialConfig
from vmm.devices.pci.firmware import PIR_ADDRESS, configure_like_bios, pir_table
from vmm.machine import Machine

MULTIBOOT_ELF = ROOT / "guests" / "build" / "multiboot.elf"
BIOS = ROOT / "firmware" / "build" / "bios.bin"


def pc_config(tmp_path: Path, **extra) -> MachineConfig:
    disk = tmp_path / "vd.img"
    disk.write_bytes(bytes(1 << 20))
    return MachineConfig(machine="pc", serial=SerialConfig("none"), disks=[DiskConfig("virtio0", disk)],
                         nics=[NicConfig(connection="null")], balloon=True, **extra)  # fmt: skip


def bus_state(machine: Machine) -> tuple[list[bytes], int]:
    return [bytes(f.config) for f in machine.pci.bus.devices()], machine.io.read(0x4D1, 1)


@pytest.fixture(scope="module")
def after_post(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[bytes], int, list[str]]:
    machine = Machine(pc_config(tmp_path_factory.mktemp("bios"), bios=require_file(BIOS)))
    try:
        result = machine.run(max_instructions=50_000_000)
        text = bytes(machine.serial_transcript).decode().replace("\r\n", "\n")
        assert result.reason == "halted" and "No bootable disk" in text, text
        configs, elcr = bus_state(machine)
    finally:
        machine.close()
    return configs, elcr, [line for line in text.splitlines() if line.startswith("PCI ")]


def test_direct_boot_leaves_the_bus_as_the_bios_does(tmp_path: Path, after_post) -> None:
    configs, elcr, _listing = after_post
    machine = Machine(pc_config(tmp_path, kernel=require_file(MULTIBOOT_ELF)))
    try:
        assert bus_state(machine) == (configs, elcr)
        assert elcr & 0x0C == 0x0C  # IRQ 10 and 11 level-triggered
        assert machine.memory.read(PIR_ADDRESS, len(pir_table())) == pir_table()
        devices = machine.pci.bus.devices()
        assert [d.config[0x3C] for d in devices[2:]] == [11, 10, 11, 10]  # slots 2-5
        assert all(d.command & 2 for d in devices[2:])  # memory decode on
    finally:
        machine.close()


def test_the_listing_is_the_bios_listing(tmp_path: Path, after_post) -> None:
    _configs, _elcr, listing = after_post
    machine = Machine(pc_config(tmp_path))
    try:
        assert configure_like_bios(machine.io, machine.memory, write_pir=False) == listing
    finally:
        machine.close()


def test_the_pir_table_is_the_roms() -> None:
    rom = require_file(BIOS).read_bytes()
    table = pir_table()
    assert rom[rom.index(b"$PIR") :][: len(table)] == table
    assert sum(table) & 0xFF == 0 and len(table) == 32 + 16 * 31
