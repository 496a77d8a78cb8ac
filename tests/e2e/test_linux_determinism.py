"""The Debian Linux guest (`make linux-guest`: kernel 6.1 and a busybox initramfs on a
syslinux disk) reruns bit for bit: two boots to the end of its init (which writes the
exit port) agree in every port access, serial byte and instruction count whether the host
runs them in one slice or in small random ones, and a machine saved midway through the
kernel's start-up and restored ends exactly as the run that was not interrupted.

Each boot is about 6.3 G instructions: the tests are marked `slow` (CI runs them)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, require_file
from vmm.config import DiskConfig, MachineConfig, SerialConfig
from vmm.machine import Machine

DISK = ROOT / "guests" / "build" / "linux" / "disk.img"
INIT_LINE = re.compile(rb"vmm-linux-guest: init running as pid 1 on Linux \S+")
MEMORY_MB = 128  # the kernel needs about 82 MiB
LIMIT = 20_000_000_000  # instructions: a safety net; the guest exits after about 6.3 G
MIDWAY = 3_000_000_000  # inside the kernel's start-up


def linux_machine() -> Machine:
    disk = require_file(DISK, "run make linux-guest")
    config = MachineConfig(memory_mb=MEMORY_MB, disks=[DiskConfig("ide0:0", disk)], serial=SerialConfig("none"),
                           scratch_disks=True)  # fmt: skip
    return Machine(config)


@pytest.mark.slow
def test_linux_boots_the_same_in_one_slice_and_in_random_slices():
    disk = require_file(DISK, "run make linux-guest")
    proc = subprocess.run([sys.executable, "-m", "vmm", "run", str(disk), "--mem", f"{MEMORY_MB}M",
                           "--max-insns", str(LIMIT), "--check-determinism", "13"],
                          capture_output=True, text=True, timeout=1800)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    first = re.search(r"first run: ([\d,]+) instructions, ([\d,]+) port events, ended: exit-port 1", proc.stderr)
    assert first, proc.stderr
    assert int(first[1].replace(",", "")) > 6_000_000_000
    assert re.search(r"vmm: deterministic: [\d,]+ slices ran the same", proc.stderr), proc.stderr


@pytest.mark.slow
def test_linux_saved_midway_and_restored_ends_identically():
    machine = linux_machine()
    try:
        assert machine.run(max_instructions=MIDWAY).reason == "limit"
        saved = machine.save_state()
        result = machine.run(max_instructions=LIMIT)
        straight = (result.reason, result.status, machine.cpu.instructions, bytes(machine.serial_transcript))
    finally:
        machine.close()
    assert straight[:2] == ("exit-port", 1)
    assert INIT_LINE.search(straight[3]), straight[3][-2000:]
    restored = linux_machine()
    try:
        restored.serial_transcript[:] = straight[3][: saved.serial_length]
        restored.load_state(saved)
        result = restored.run(max_instructions=LIMIT)
        again = (result.reason, result.status, restored.cpu.instructions, bytes(restored.serial_transcript))
    finally:
        restored.close()
    assert again == straight
