"""Debian's gdb, in batch mode, against `vmm run --gdb`: what gdb prints is the test."""

from __future__ import annotations

import socket
import subprocess
import sys

from tests.conftest import ROOT, require_file, require_tool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gdb_breaks_at_the_boot_sector_and_steps(tmp_path):
    gdb = require_tool("gdb")
    image = require_file(ROOT / "guests/build/toyos.img", "make -C firmware && make -C guests")
    port = free_port()
    vmm = subprocess.Popen([sys.executable, "-m", "vmm", "run", str(image), "--serial", "none",
                            "--gdb", f"127.0.0.1:{port}", "--wait"], stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        commands = ["set pagination off", "set confirm off", f"target remote 127.0.0.1:{port}",
                    "break *0x7c00", "continue", "info registers eip", "stepi", "info registers eip",
                    "x/4i $pc", "monitor stages", "kill"]  # fmt: skip
        # gdb retries the connection until vmm listens (no sleeping here).
        argv = [gdb, "-nx", "-batch", "-ex", "set tcp connect-timeout 30"]
        for command in commands:
            argv += ["-ex", command]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    finally:
        vmm.wait(timeout=60)
    out = result.stdout + result.stderr
    assert "Breakpoint 1, 0x00007c00 in ?? ()" in out, out + result.stderr
    eips = [line.split()[1] for line in out.splitlines() if line.startswith("eip")]
    assert eips[0] == "0x7c00"
    assert int(eips[1], 16) > 0x7c00
    assert "=> 0x7c01" in out or f"=> {eips[1]}" in out
    assert "stage bootloader" in out
