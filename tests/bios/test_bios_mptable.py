"""The BIOS's Intel MultiProcessor Specification tables (firmware/mptable.S), walked by
tests/bios/mptable.S as an operating system does: on `--machine pc` the floating
pointer is found in the EBDA, both checksums hold, every entry is listed and the local
APIC and I/O APIC answer at the addresses the table gives; the same program prints the
same bytes under QEMU -M pc with vmm's BIOS. `isapc` (no APIC) has no table."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.bios.build import build_boot_image
from tests.bios.test_bios_vmm import BIOS, EXIT_STATUS, QEMU_TIMEOUT, as_text
from tests.conftest import QEMU_DETERMINISTIC, require_file, require_tool
from vmm.config import DiskConfig, MachineConfig, SerialConfig
from vmm.machine import Machine

START = "mptable: walk\n"
ISA = "".join(
    f"isa int type=00 flags=0000 bus=01 irq={irq:02X} apic=00 pin={pin:02X}\n"
    for irq, pin in [(0, 2), (1, 1), *((n, n) for n in (3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15))]
)
PC_WALK = (
    START + "_MP_ found in RAM below 1 MiB length=01 rev=04 feature1=00 feature2=00\n"
    "PCMP length=04B0 sum=00 rev=04 entries=008F lapic=FEE00000 ext=0000\n"
    "lapic version register v=00050014 id=00\n"
    "cpu apic=00 ver=14 flags=03\n"
    "bus id=00 PCI   \n"
    "bus id=01 ISA   \n"
    "ioapic id=00 ver=20 flags=01 addr=FEC00000 reg1=00170020\n"
    # slot 2, pins A-D: links B, C, D, A on IRQ 11, 10, 11, 10 (as the $PIR table)
    "pci int type=00 flags=0001 bus=00 irq=08 apic=00 pin=0B\n"
    "pci int type=00 flags=0001 bus=00 irq=09 apic=00 pin=0A\n"
    "pci int type=00 flags=0001 bus=00 irq=0A apic=00 pin=0B\n"
    "pci int type=00 flags=0001 bus=00 irq=0B apic=00 pin=0A\n"
    + ISA
    + "local int type=03 flags=0000 bus=01 irq=00 apic=00 lint=00\n"
    "local int type=01 flags=0000 bus=01 irq=00 apic=FF lint=01\n"
    "pci interrupt entries n=007C\n"
    "done\n"
)


def walk_under_vmm(machine: str, tmp_path: Path) -> tuple[str, int]:
    require_file(BIOS, "run make -C firmware")
    image = build_boot_image("mptable", tmp_path)
    config = MachineConfig(machine=machine, bios=BIOS, serial=SerialConfig("none"), disks=[DiskConfig("ide0:0", image)])
    vm = Machine(config)
    try:
        result = vm.run(max_instructions=50_000_000)
        text = as_text(bytes(vm.serial_transcript))
        return text[text.index(START) :], result.status
    finally:
        vm.close()


def test_pc_publishes_the_mp_tables(tmp_path: Path) -> None:
    text, status = walk_under_vmm("pc", tmp_path)
    assert text == PC_WALK
    assert status == EXIT_STATUS


def test_isapc_has_no_mp_table(tmp_path: Path) -> None:
    text, _ = walk_under_vmm("isapc", tmp_path)
    assert text == START + "no MP floating pointer\ndone\n"


@pytest.mark.qemu
def test_the_walk_prints_the_same_under_qemu_pc(tmp_path: Path) -> None:
    qemu = require_tool("qemu-system-x86_64")
    image = build_boot_image("mptable", tmp_path / "qemu")
    out = tmp_path / "qemu.serial"
    result = subprocess.run([
        qemu, "-M", "pc", "-bios", str(BIOS), "-display", "none", "-serial", f"file:{out}",
        "-drive", f"file={image},format=raw,if=ide",
        "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-m", "64", "-no-reboot", *QEMU_DETERMINISTIC,
    ], stdin=subprocess.DEVNULL, capture_output=True, timeout=QEMU_TIMEOUT)  # fmt: skip
    assert result.returncode == EXIT_STATUS, result.stderr.decode(errors="replace")
    text = as_text(out.read_bytes())
    assert text[text.index(START) :] == PC_WALK
