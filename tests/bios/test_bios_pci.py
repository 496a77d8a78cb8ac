"""The BIOS's PCI side on the `pc` machine: POST lists the bus, the PCI BIOS (INT 1Ah
B1xxh) answers, and the same program prints the same answers under QEMU's `-M pc` with
vmm's BIOS and a modern virtio-blk-pci at 00:02.0 (tests/bios/pci.S)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.bios.build import build_boot_image
from tests.bios.test_bios_vmm import BIOS, EXIT_STATUS, QEMU_TIMEOUT, as_text
from tests.conftest import require_file, require_tool
from vmm.config import DiskConfig, MachineConfig, SerialConfig
from vmm.machine import Machine

PROGRAM_START = "pci: INT 1Ah B1xxh and $PIR\n"


def boot_vmm_pc(image: Path, virtio_disk: Path) -> tuple[str, int]:
    require_file(BIOS, "run make -C firmware")
    config = MachineConfig(machine="pc", bios=BIOS, serial=SerialConfig("none"),
                           disks=[DiskConfig("ide0:0", image), DiskConfig("virtio0", virtio_disk)])  # fmt: skip
    machine = Machine(config)
    try:
        result = machine.run(max_instructions=50_000_000)
        return as_text(bytes(machine.serial_transcript)), result.status
    finally:
        machine.close()


def test_post_lists_the_bus_and_the_pci_bios_answers(tmp_path: Path) -> None:
    disk = tmp_path / "virtio.img"
    disk.write_bytes(bytes(1 << 20))
    text, status = boot_vmm_pc(build_boot_image("pci", tmp_path), disk)
    assert status == EXIT_STATUS
    assert (
        "Disk 80h: 4 MiB, LBA48\n"
        "PCI 00:00.0 8086:1237 class 0600\n"
        "PCI 00:01.0 8086:7000 class 0601\n"
        "PCI 00:02.0 1AF4:1042 class 0100 IRQ 11\n"
        "PCI 00:03.0 1AF4:1044 class 00FF IRQ 10\n"
        "Booting from hard disk...\n"
    ) in text
    program = text[text.index(PROGRAM_START) :]
    assert "B101 install: CF=0 AH=00 AL=01 BX=0210 CL=00 EDX=20494350\n" in program
    assert "B102 1AF4:1042 #0: CF=0 AH=00 BX=0010\n" in program
    assert "$PIR: found, size=0210 sum=00\n" in program
    assert "B102 1AF4:1042 #1: CF=1 AH=86\n" in program


@pytest.mark.qemu
def test_pci_bios_answers_as_under_qemu_pc(tmp_path: Path) -> None:
    qemu = require_tool("qemu-system-x86_64")
    disk = tmp_path / "virtio.img"
    disk.write_bytes(bytes(1 << 20))
    vmm_text, _ = boot_vmm_pc(build_boot_image("pci", tmp_path / "vmm"), disk)
    image = build_boot_image("pci", tmp_path / "qemu")
    out = tmp_path / "qemu.serial"
    result = subprocess.run([
        qemu, "-M", "pc", "-vga", "none", "-nic", "none", "-bios", str(BIOS), "-display", "none",
        "-serial", f"file:{out}", "-drive", f"file={image},format=raw,if=ide",
        "-drive", f"file={disk},format=raw,if=none,id=vd",
        "-device", "virtio-blk-pci,drive=vd,addr=2,disable-legacy=on",
        "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-m", "64", "-no-reboot",
    ], stdin=subprocess.DEVNULL, capture_output=True, timeout=QEMU_TIMEOUT)  # fmt: skip
    qemu_text = as_text(out.read_bytes())
    assert result.returncode == EXIT_STATUS, result.stderr.decode(errors="replace")
    assert "PCI 00:02.0 1AF4:1042 class 0100 IRQ 11\n" in qemu_text  # QEMU's own devices are listed too
    assert vmm_text[vmm_text.index(PROGRAM_START) :] == qemu_text[qemu_text.index(PROGRAM_START) :]


def test_pc_machine_state_saved_mid_run_continues_identically(tmp_path: Path) -> None:
    """Save the whole pc machine (PCI config spaces, BAR decoding, PIRQ routing, virtio
    state) in the middle of the program; a fresh machine loaded from it prints the same."""
    disk = tmp_path / "virtio.img"
    disk.write_bytes(bytes(1 << 20))
    image = build_boot_image("pci", tmp_path)
    config = MachineConfig(machine="pc", bios=BIOS, serial=SerialConfig("none"),
                           disks=[DiskConfig("ide0:0", image), DiskConfig("virtio0", disk)])  # fmt: skip
    first = Machine(config)
    try:
        while b"B101 install" not in first.serial_transcript:  # into the program, past POST
            assert first.run(max_instructions=20_000).reason == "limit"
        state = first.save_state()
        first.run(max_instructions=50_000_000)
        expected = bytes(first.serial_transcript)
    finally:
        first.close()
    second = Machine(config)
    try:
        second.serial_transcript[:] = expected[: state.serial_length]
        second.load_state(state)
        result = second.run(max_instructions=50_000_000)
        assert bytes(second.serial_transcript) == expected
        assert result.status == EXIT_STATUS
    finally:
        second.close()
