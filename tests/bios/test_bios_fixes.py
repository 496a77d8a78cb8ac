"""The fixes of issue 20. `vmm run IMG --disk IMG2` (and `--disk A --disk B`): the guest's INT 13h lists drives
80h and 81h, exactly as QEMU does with the second image as -hdb; a third disk and a bad
slot are refused with one clear line; disks under 1 MiB are listed in KiB; `--no-bios-serial`
turns the BIOS copy of screen text to COM1 off for one run (tests/bios/serialcopy.S shows the
automatic rule)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.bios.build import build_boot_image
from tests.bios.test_bios_qemu import qemu_command
from tests.bios.test_bios_vmm import BIOS, QEMU_ISAPC, QEMU_TIMEOUT
from tests.conftest import require_file, require_tool
from vmm.config import DiskConfig, MachineConfig
from vmm.errors import ConfigError

BOTH_LISTED = (
    "drive 80 08h: CF=0 AH=00 disks=02 heads=0F CX=073F 15h: CF=0 AH=03\n"
    "drive 81 08h: CF=0 AH=00 disks=02 heads=0F CX=073F 15h: CF=0 AH=03\n"
)


def vmm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vmm", *args], stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=120)  # fmt: skip


@pytest.fixture
def two_disks(tmp_path: Path) -> tuple[Path, Path]:
    require_file(BIOS, "run make -C firmware")
    first = build_boot_image("drives", tmp_path)
    second = tmp_path / "second.img"
    second.write_bytes(first.read_bytes())
    return first, second


@pytest.mark.parametrize("form", ["image-and-disk", "disk-twice"])
def test_repeated_disk_flag_gives_the_guest_both_disks(two_disks, form: str) -> None:
    first, second = two_disks
    disks = ["--disk", str(second)]
    args = [str(first), *disks] if form == "image-and-disk" else ["--disk", str(first), *disks]
    proc = vmm("run", *args, "--max-insns", "50000000")
    text = proc.stdout.decode("latin-1").replace("\r\n", "\n")
    assert "Disk 80h: 4 MiB, LBA48\nDisk 81h: 4 MiB, LBA48\n" in text
    assert BOTH_LISTED in text
    assert proc.returncode == 1  # the program's exit port status


def test_a_disk_under_one_mib_is_listed_in_kib(two_disks) -> None:
    first, second = two_disks
    second.write_bytes(first.read_bytes()[: 64 * 1024])
    proc = vmm("run", str(first), "--disk", str(second), "--max-insns", "50000000")
    assert b"Disk 80h: 4 MiB, LBA48\r\nDisk 81h: 64 KiB, LBA48\r\n" in proc.stdout


def test_a_third_disk_is_refused_with_one_line(two_disks) -> None:
    first, second = two_disks
    proc = vmm("run", str(first), "--disk", str(second), "--disk", str(second))
    assert proc.returncode == 2
    expected = f"vmm: {second}: no free IDE slot (vmm has two disks at most: ide0:0, ide0:1)"
    assert proc.stderr.decode().strip() == expected


def test_validate_rejects_an_unknown_slot(tmp_path: Path) -> None:
    config = MachineConfig(disks=[DiskConfig("ide0:2", tmp_path / "x.img")])
    with pytest.raises(ConfigError, match=r"x.img: no disk slot 'ide0:2' \(vmm has ide0:0, ide0:1, floppy0\)"):
        config.validate()


@pytest.mark.qemu
def test_two_disks_print_the_same_as_qemu_with_hdb(two_disks, tmp_path: Path) -> None:
    first, second = two_disks
    proc = vmm("run", str(first), "--disk", str(second), "--max-insns", "50000000")
    qemu = require_tool("qemu-system-x86_64")
    out = tmp_path / "qemu.serial"
    command = [*qemu_command(qemu, first, f"file:{out}"), *QEMU_ISAPC,
               "-drive", f"file={second},format=raw,if=ide,index=1"]  # fmt: skip
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=QEMU_TIMEOUT)
    assert result.returncode == proc.returncode == 1
    assert proc.stdout == out.read_bytes()


def test_no_bios_serial_flag_keeps_screen_text_off_com1(tmp_path: Path) -> None:
    require_file(BIOS, "run make -C firmware")
    image = build_boot_image("serialcopy", tmp_path)
    proc = vmm("run", str(image), "--no-bios-serial", "--max-insns", "50000000")
    text = proc.stdout.decode("latin-1").replace("\r\n", "\n")
    # No banner, no copied teletype line: only what the program sends through INT 14h.
    assert text.startswith("serialcopy: INT 10h teletype and COM1\nCOM1 programmed")
    assert "vmm BIOS" not in text and "copied" not in text
    assert proc.returncode == 1


def test_no_bios_serial_is_not_kept_in_the_cmos_image() -> None:
    from vmm.clock import VirtualClock
    from vmm.devices.cmos import BIOS_OPTIONS, OPTION_NO_SERIAL_COPY, Mc146818Cmos

    cmos = Mc146818Cmos(VirtualClock(100), 64 << 20, forced_options=OPTION_NO_SERIAL_COPY)
    assert cmos.read_register(BIOS_OPTIONS) & OPTION_NO_SERIAL_COPY
    assert not cmos.nvram_bytes()[BIOS_OPTIONS] & OPTION_NO_SERIAL_COPY
    copy = Mc146818Cmos(VirtualClock(100), 64 << 20)
    copy.restore(cmos.save())
    assert copy.read_register(BIOS_OPTIONS) & OPTION_NO_SERIAL_COPY
