"""The vmm BIOS under QEMU: each test program in tests/bios/*.S boots from its
own disk image, calls one family of BIOS services and prints what it got; the
serial output must match tests/bios/expected/<name>.txt exactly (CR LF read
as LF).  Time-dependent values are printed by the programs only as verdicts
("valid BCD", "increased"), so the expected text is fixed.

The command line is the one vmm's tests will compare against:

    qemu-system-x86_64 -bios firmware/build/bios.bin -display none
        -serial file:OUT -drive file=IMG,format=raw,if=ide
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 -m 64 -no-reboot
        -global isa-fdc.fdtypeA=none   (no drive A:, as vmm without --floppy)

(the keyboard test uses ``-serial stdio`` to type into COM1).  A test program
ends by writing 0 to port F4h, which QEMU turns into exit status 1.
"""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import time
from pathlib import Path

import pytest

from tests.bios.build import build_boot_image, program_names
from tests.conftest import QEMU_DETERMINISTIC, QEMU_NO_FLOPPY, ROOT, require_file, require_tool

BIOS = ROOT / "firmware" / "build" / "bios.bin"
EXPECTED = Path(__file__).resolve().parent / "expected"
TIMEOUT = 60  # seconds; a test normally takes well under one
EXIT_STATUS = 1  # isa-debug-exit: (0 << 1) | 1

# Bytes typed on the serial console for the test programs that read keys.
SERIAL_INPUT = {
    "keyboard": b"aZ1\r\x1b\t\x08~\nx\r\ny",
}

# QEMU's default machine is `pc`: POST lists its PCI bus (host bridge, PIIX3, IDE, VGA,
# e1000), which vmm's ISA machine the expected texts also describe does not have. Those
# lines are left out of the comparison (tests/bios/test_bios_pci.py checks them), and the
# PCI BIOS program runs on QEMU's isapc, where it finds no PCI, as on vmm's default machine
# (so does the program that reads the cursor row, which those lines move down the screen).
POST_PCI_LINE = re.compile(r"^PCI [0-9A-F]{2}:[0-9A-F]{2}\.[0-7] .*\n", re.M)
QEMU_ISAPC = ["-M", "isapc", "-cpu", "qemu64,-apic"]
QEMU_MACHINE = {"pci": QEMU_ISAPC, "serialcopy": QEMU_ISAPC, "mptable": QEMU_ISAPC}

pytestmark = pytest.mark.qemu


def qemu_command(qemu: str, image: Path, serial: str) -> list[str]:
    return [
        qemu, "-bios", str(BIOS), "-display", "none", "-serial", serial,
        "-drive", f"file={image},format=raw,if=ide",
        "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-m", "64", "-no-reboot", *QEMU_DETERMINISTIC,
        *QEMU_NO_FLOPPY,
    ]  # fmt: skip


def run_image(image: Path, serial_input: bytes = b"", machine: list[str] | None = None) -> tuple[int, str]:
    """Boot ``image`` under QEMU; returns (exit status, serial text with LF line ends,
    without the POST's PCI lines)."""
    qemu = require_tool("qemu-system-x86_64")
    require_file(BIOS, "run make -C firmware")
    extra = machine or []
    if serial_input:
        result = subprocess.run([*qemu_command(qemu, image, "stdio"), *extra], input=serial_input,
                                capture_output=True, timeout=TIMEOUT)  # fmt: skip
        output = result.stdout
    else:
        out = image.with_suffix(".serial")
        result = subprocess.run([*qemu_command(qemu, image, f"file:{out}"), *extra], stdin=subprocess.DEVNULL,
                                capture_output=True, timeout=TIMEOUT)  # fmt: skip
        output = out.read_bytes()
    assert not result.stderr.strip(), result.stderr.decode(errors="replace")
    return result.returncode, POST_PCI_LINE.sub("", output.decode("latin-1").replace("\r\n", "\n"))


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bios-images")


@pytest.mark.parametrize("name", program_names())
def test_program_output_matches_expected(name: str, images: Path) -> None:
    image = build_boot_image(name, images)
    status, text = run_image(image, SERIAL_INPUT.get(name, b""), QEMU_MACHINE.get(name))
    expected = (EXPECTED / f"{name}.txt").read_text(encoding="latin-1")
    assert text == expected
    assert status == EXIT_STATUS


def test_every_program_has_expected_output() -> None:
    missing = [n for n in program_names() if not (EXPECTED / f"{n}.txt").exists()]
    assert not missing


def test_demo_disk_boots_and_exits() -> None:
    demo = require_file(ROOT / "firmware" / "build" / "hello.img", "run make -C firmware")
    status, text = run_image(demo)
    assert status == EXIT_STATUS
    assert text.startswith("vmm BIOS ")
    assert "Booting from hard disk...\nHello from the boot sector!\n" in text
    assert "from drive 80h\n" in text


def test_blank_disk_reports_no_bootable_disk_and_halts(tmp_path: Path) -> None:
    """A disk without the 55AA signature: the BIOS says so and halts (QEMU keeps
    running, so we read the serial port until the message and then stop it)."""
    qemu = require_tool("qemu-system-x86_64")
    require_file(BIOS, "run make -C firmware")
    blank = tmp_path / "blank.img"
    blank.write_bytes(bytes(1 << 20))
    proc = subprocess.Popen(qemu_command(qemu, blank, "stdio"), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    received = b""
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + TIMEOUT
            while b"No bootable disk\r\n" not in received and time.monotonic() < deadline:
                if selector.select(timeout=deadline - time.monotonic()):
                    chunk = os.read(proc.stdout.fileno(), 4096)
                    if not chunk:
                        break
                    received += chunk
        assert proc.poll() is None, "QEMU stopped: the BIOS should halt, not exit"
    finally:
        proc.kill()
        proc.wait()
    text = received.decode("latin-1").replace("\r\n", "\n")
    assert text.endswith("Booting from hard disk...\nNo bootable disk\n")
