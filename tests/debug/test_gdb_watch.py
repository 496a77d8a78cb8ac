"""`vmm run --gdb` with watchpoints (Debian's gdb in batch mode: what it prints is the
test) and without `--wait` (the guest runs while nobody connects)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import require_tool
from tests.cpu.rom import assemble_rom
from tests.debug.test_gdb_interop import start_vmm_with_gdb
from tests.debug.test_watch import COUNTER


def write_rom(tmp_path):
    rom = tmp_path / "counter.bin"
    rom.write_bytes(assemble_rom(COUNTER))
    return rom


def test_gdb_watch_reports_old_and_new_values(tmp_path):
    gdb = require_tool("gdb")
    rom = write_rom(tmp_path)
    vmm, port = start_vmm_with_gdb("--bios", str(rom), "--serial", "none", "--wait")
    try:
        commands = ["set pagination off", "set confirm off", f"target remote 127.0.0.1:{port}",
                    "watch *(int*)0x7000", "continue", "continue", "info registers rip", "kill"]  # fmt: skip
        argv = [gdb, "-nx", "-batch"]
        for command in commands:
            argv += ["-ex", command]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    finally:
        vmm.wait(timeout=60)
    out = result.stdout + result.stderr
    assert "Hardware watchpoint 1: *(int*)0x7000" in out, out
    assert "Old value = 0\nNew value = 1" in out, out
    assert "Old value = 1\nNew value = 2" in out, out
    # Stopped after the watched `mov` (F000:0010, 5 bytes): at the next instruction.
    eips = [line.split()[1] for line in out.splitlines() if line.startswith("rip")]
    assert eips == ["0x15"], out


def test_gdb_without_wait_lets_the_guest_run_to_its_end(tmp_path):
    rom = write_rom(tmp_path)
    result = subprocess.run([sys.executable, "-m", "vmm", "run", "--bios", str(rom), "--serial", "none",
                             "--gdb", "127.0.0.1:0"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 33, result.stderr
