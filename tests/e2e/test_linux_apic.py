"""The Debian Linux guest (`make linux-guest`) on vmm's `pc` machine runs in APIC mode:
it finds the BIOS's MP table, switches to symmetric I/O mode with the PIT on I/O APIC
input 2, routes the PCI devices' INTx through the I/O APIC, and its local APIC timer
ticks (the LOC line of /proc/interrupts), as under QEMU -M pc. A boot is ~2 G
instructions: marked slow (CI runs it)."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_file, require_tool
from tests.e2e.test_linux_virtio import LINUX, cpio_replace
from vmm.config import DiskConfig, MachineConfig, SerialConfig
from vmm.machine import Machine

INIT = Path(__file__).resolve().parent / "linux_apic_init.sh"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def serial_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    work = tmp_path_factory.mktemp("linux-apic")
    mcopy = require_tool("mcopy")
    image = work / "disk.img"
    shutil.copyfile(require_file(LINUX / "disk.img", "run make linux-guest"), image)
    archive = gzip.decompress(require_file(LINUX / "initrd.gz", "run make linux-guest").read_bytes())
    initrd = work / "initrd.gz"
    initrd.write_bytes(gzip.compress(cpio_replace(archive, "init", INIT.read_bytes())))
    subprocess.run([mcopy, "-o", "-i", f"{image}@@1M", str(initrd), "::initrd.gz"], check=True,
                   env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"})  # fmt: skip
    config = MachineConfig(machine="pc", memory_mb=128, serial=SerialConfig("none"),
                           disks=[DiskConfig("ide0:0", image)])  # fmt: skip
    machine = Machine(config)
    try:
        result = machine.run(max_instructions=20_000_000_000)
        text = bytes(machine.serial_transcript).decode("latin-1").replace("\r\n", "\n")
    finally:
        machine.close()
    assert result.reason == "exit-port", text[-3000:]
    return text


def test_linux_finds_the_mp_table_and_uses_the_io_apic(serial_text: str) -> None:
    assert "found SMP MP-table at [mem 0x0009fd60-0x0009fd6f]" in serial_text
    assert "MPTABLE: APIC at: 0xFEE00000" in serial_text
    assert "IOAPIC[0]: apic_id 0, version 32, address 0xfec00000, GSI 0-23" in serial_text
    assert "APIC: Switch to symmetric I/O mode setup" in serial_text
    assert "..TIMER: vector=0x30 apic1=0 pin1=2 apic2=-1 pin2=-1" in serial_text
    assert "No local APIC present" not in serial_text


def test_interrupts_arrive_through_the_apics(serial_text: str) -> None:
    lines = [line for line in serial_text.splitlines() if line.startswith("apic-check: ")]
    assert lines[-1] == "apic-check: done", serial_text[-3000:]
    local_timer = next(line for line in lines if "LOC:" in line)
    assert int(re.search(r"LOC:\s+(\d+)", local_timer).group(1)) > 250  # HZ=250: over a second of ticks
    assert any(re.search(r"IO-APIC\s+4-edge\s+ttyS0", line) for line in lines), lines
    assert [line for line in lines if "XT-PIC" in line and "cascade" not in line] == []
