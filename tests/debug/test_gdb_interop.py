"""Debian's gdb, in batch mode, against `vmm run --gdb`: what gdb prints is the test."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT, require_file, require_tool


def start_vmm_with_gdb(*args: str) -> tuple[subprocess.Popen, int]:
    """`vmm run ... --gdb 127.0.0.1:0`: the kernel picks a free port and vmm names it on
    stderr once it listens, so gdb connects without racing other users of the port."""
    vmm = subprocess.Popen([sys.executable, "-m", "vmm", "run", *args, "--gdb", "127.0.0.1:0"],
                           stderr=subprocess.PIPE, text=True)  # fmt: skip
    line = vmm.stderr.readline()
    assert line.startswith("vmm: gdb stub on tcp 127.0.0.1:"), line + vmm.stderr.read()
    return vmm, int(line.rsplit(":", 1)[1])


def test_gdb_breaks_at_the_boot_sector_and_steps(tmp_path):
    gdb = require_tool("gdb")
    image = require_file(ROOT / "guests/build/toyos.img", "make -C firmware && make -C guests")
    vmm, port = start_vmm_with_gdb(str(image), "--serial", "none", "--wait")
    try:
        commands = ["set pagination off", "set confirm off", f"target remote 127.0.0.1:{port}",
                    "break *0x7c00", "continue", "info registers eip", "stepi", "info registers eip",
                    "x/4i $pc", "monitor stages", "kill"]  # fmt: skip
        argv = [gdb, "-nx", "-batch"]
        for command in commands:
            argv += ["-ex", command]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    finally:
        vmm.wait(timeout=60)
    out = result.stdout + result.stderr
    assert "Breakpoint 1, 0x00007c00 in ?? ()" in out, out + result.stderr
    eips = [line.split()[1] for line in out.splitlines() if line.startswith("eip")]
    assert eips[0] == "0x7c00"
    assert int(eips[1], 16) > 0x7C00
    assert "=> 0x7c01" in out or f"=> {eips[1]}" in out
    assert "stage bootloader" in out
