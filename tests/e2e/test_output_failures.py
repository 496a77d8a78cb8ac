"""Where vmm writes its output cannot take it (issue 23): a full device, a missing folder.
One line, and the guest's own exit status when the guest ran to its end."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.cpu.rom import assemble_rom
from tests.debug.test_watch import COUNTER


@pytest.fixture
def rom(tmp_path) -> str:
    path = tmp_path / "counter.bin"
    path.write_bytes(assemble_rom(COUNTER))  # prints 12345 on COM1, exits with status 33
    return str(path)


def vmm(*args: str, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vmm", *args], stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120
    )


def test_serial_to_a_full_stdout_is_said_once_and_the_guest_runs_on(rom):
    with open("/dev/full", "w") as full:
        done = vmm("run", "--bios", rom, stdout=full)
    assert done.returncode == 33
    assert done.stderr == (
        "vmm: stdout: cannot write COM1 output: No space left on device; output discarded from here\n"
    )


def test_serial_file_on_a_full_device_is_said_once_and_the_guest_runs_on(rom):
    done = vmm("run", "--bios", rom, "--serial", "file:/dev/full")
    assert done.returncode == 33
    assert done.stderr == (
        "vmm: /dev/full: cannot write COM1 output: No space left on device; output discarded from here\n"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["screenshot", "--out", "{missing}/screen.png"],
        ["trace", "--until", "0x1234", "--out", "{missing}/trace.txt"],
        ["run", "--serial", "none", "--screenshot", "{missing}/screen.png"],
    ],
)
def test_output_into_a_missing_folder_is_refused_before_the_run(rom, tmp_path, argv):
    missing = tmp_path / "no" / "such"
    done = vmm(*[a.format(missing=missing) for a in argv], "--bios", rom)
    assert done.returncode == 2
    assert done.stderr.endswith(f": {missing}: no such folder\n") and done.stderr.count("\n") == 1


def test_screenshot_never_replaces_a_device(rom, tmp_path):
    done = vmm("screenshot", "--bios", rom, "--out", "/dev/null")
    assert done.returncode == 2
    assert done.stderr == "vmm: --out: /dev/null is not a regular file\n"
    assert not os.path.isfile("/dev/null")
