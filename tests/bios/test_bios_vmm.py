"""The vmm BIOS on vmm, and beside QEMU's isapc (the same machine).

Each test program in tests/bios/*.S boots from a fresh disk image (the programs write
to their disks) and must print exactly tests/bios/expected/<name>.txt, the text recorded
under QEMU, and leave through port F4h (status 1).  The QEMU comparison boots the same
image under ``qemu-system-x86_64 -M isapc -cpu qemu64,-apic -bios firmware/build/bios.bin``:
an ISA PC without PCI or local APIC, as vmm emulates; the serial bytes must be identical.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.bios.build import build_boot_image, program_names
from tests.bios.test_bios_qemu import SERIAL_INPUT, qemu_command
from tests.conftest import ROOT, require_file, require_tool
from vmm.config import DiskConfig, MachineConfig, SerialConfig
from vmm.machine import Machine, MachineExit

BIOS = ROOT / "firmware" / "build" / "bios.bin"
DEMO = ROOT / "firmware" / "build" / "hello.img"
EXPECTED = Path(__file__).resolve().parent / "expected"
EXIT_STATUS = 1  # the programs write 0 to port F4h: (0 << 1) | 1
MAX_INSTRUCTIONS = 50_000_000  # a program takes well under 1 million
QEMU_ISAPC = ["-M", "isapc", "-cpu", "qemu64,-apic"]
QEMU_TIMEOUT = 60

# The programs that read keys print this just before their first INT 16h read; the
# input (the same bytes the QEMU test types) is sent then, while the program waits.
READY_FOR_INPUT = {"keyboard": b"00 keys:"}


def boot(image: Path, serial_input: bytes = b"", ready: bytes | None = None) -> tuple[MachineExit, bytes]:
    """Boot ``image`` on vmm's BIOS; returns why the run ended and the COM1 bytes."""
    require_file(BIOS, "run make -C firmware")
    machine = Machine(MachineConfig(bios=BIOS, disks=[DiskConfig("ide0:0", image)], serial=SerialConfig("none")))
    pending = [serial_input] if serial_input else []

    def type_when_ready() -> None:
        if pending and (ready is None or ready in machine.serial_transcript):
            machine.send(pending.pop())

    try:
        result = machine.run(max_instructions=MAX_INSTRUCTIONS, poll=type_when_ready)
        return result, bytes(machine.serial_transcript)
    finally:
        machine.close()


def boot_program(name: str, out_dir: Path) -> tuple[MachineExit, bytes]:
    image = build_boot_image(name, out_dir)
    return boot(image, SERIAL_INPUT.get(name, b""), READY_FOR_INPUT.get(name))


def boot_qemu(image: Path, serial_input: bytes = b"") -> tuple[int, bytes]:
    """The same image under QEMU's isapc with vmm's BIOS: (exit status, COM1 bytes)."""
    qemu = require_tool("qemu-system-x86_64")
    require_file(BIOS, "run make -C firmware")
    if serial_input:
        result = subprocess.run([*qemu_command(qemu, image, "stdio"), *QEMU_ISAPC], input=serial_input,
                                capture_output=True, timeout=QEMU_TIMEOUT)  # fmt: skip
        output = result.stdout
    else:
        out = image.with_suffix(".serial")
        result = subprocess.run([*qemu_command(qemu, image, f"file:{out}"), *QEMU_ISAPC],
                                stdin=subprocess.DEVNULL, capture_output=True, timeout=QEMU_TIMEOUT)  # fmt: skip
        output = out.read_bytes()
    assert not result.stderr.strip(), result.stderr.decode(errors="replace")
    return result.returncode, output


def as_text(serial: bytes) -> str:
    return serial.decode("latin-1").replace("\r\n", "\n")


@pytest.mark.parametrize("name", program_names())
def test_program_prints_the_expected_output(name: str, tmp_path: Path) -> None:
    result, serial = boot_program(name, tmp_path)
    assert as_text(serial) == (EXPECTED / f"{name}.txt").read_text(encoding="latin-1")
    assert (result.reason, result.status) == ("exit-port", EXIT_STATUS)


def test_error_paths_set_carry_and_the_documented_status(tmp_path: Path) -> None:
    result, serial = boot_program("errors", tmp_path)
    rows = [line for line in as_text(serial).splitlines() if ":" in line and "CF=" in line]
    failed = {line.split(":")[0].strip(): line.split("CF=")[1][:7] for line in rows}
    assert failed["13h/02 DL=81 (no slave)"] == "1 AH=01"  # invalid function / drive
    assert failed["13h/42 LBA 8192, 1 sector"] == "1 AH=04"  # sector not found
    assert failed["13h/01 after it"] == "1 AH=04"  # status of the last operation
    assert failed["15h/EE (unknown)"] == "1 AH=86"  # unsupported function
    assert failed["13h/42 LBA 8191, 1 sector"] == "0 AH=00"  # the last sector is fine
    assert result.status == EXIT_STATUS


def test_demo_disk_says_hello_and_exits() -> None:
    result, serial = boot(require_file(DEMO, "run make -C firmware"))
    assert as_text(serial) == (
        "vmm BIOS 0.1\n"
        "Memory: 639 KiB base, 64512 KiB extended\n"
        "Disk 80h: 1 MiB, LBA48\n"
        "Booting from hard disk...\n"
        "Hello from the boot sector!\n"
        "Loaded at 0000:7C00 from drive 80h\n"
        "Goodbye: writing 0 to port F4h.\n"
    )
    assert (result.reason, result.status) == ("exit-port", EXIT_STATUS)


def test_blank_disk_reports_no_bootable_disk_and_halts(tmp_path: Path) -> None:
    blank = tmp_path / "blank.img"
    blank.write_bytes(bytes(1 << 20))
    result, serial = boot(blank)
    assert as_text(serial).endswith("Booting from hard disk...\nNo bootable disk\n")
    assert result.reason == "halted"


@pytest.mark.qemu
@pytest.mark.parametrize("name", program_names())
def test_program_prints_the_same_bytes_as_under_qemu_isapc(name: str, tmp_path: Path) -> None:
    result, vmm_serial = boot_program(name, tmp_path / "vmm")
    status, qemu_serial = boot_qemu(build_boot_image(name, tmp_path / "qemu"), SERIAL_INPUT.get(name, b""))
    assert vmm_serial == qemu_serial
    assert result.status == status == EXIT_STATUS


@pytest.mark.qemu
def test_demo_disk_prints_the_same_bytes_as_under_qemu_isapc(tmp_path: Path) -> None:
    result, vmm_serial = boot(require_file(DEMO, "run make -C firmware"))
    copy = tmp_path / DEMO.name
    copy.write_bytes(DEMO.read_bytes())
    status, qemu_serial = boot_qemu(copy)
    assert vmm_serial == qemu_serial
    assert result.status == status == EXIT_STATUS
