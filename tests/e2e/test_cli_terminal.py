"""`vmm run` on a terminal (a pty): the Ctrl-] hint, stage lines that start at the left in
raw mode, leaving with Ctrl-], and the terminal given back with the prompt on a new line."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import termios

from tests.cpu.rom import assemble_rom

# Prints "ready" (no newline) and spins: only Ctrl-] ends it.
WAITING_ROM = """
    cli
    mov dx, 0x3F8
    mov si, offset msg
    call puts16
1:  jmp 1b
msg: .asciz "ready"
    .include "common.inc"
"""


def read_until(fd: int, needle: bytes, seen: bytearray) -> None:
    while needle not in seen:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: every holder of the pty's other end has closed it
            chunk = b""
        if not chunk:
            raise AssertionError(f"{needle!r} never came; got {bytes(seen)!r}")
        seen += chunk


def read_to_end(fd: int, seen: bytearray) -> None:
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return
        if not chunk:
            return
        seen += chunk


def test_ctrl_right_bracket_leaves_and_the_terminal_comes_back(tmp_path):
    rom = tmp_path / "wait.bin"
    rom.write_bytes(assemble_rom(WAITING_ROM))
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    proc = subprocess.Popen([sys.executable, "-m", "vmm", "run", "--bios", str(rom), "--stages"],
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)  # fmt: skip
    seen = bytearray()
    try:
        read_until(master, b"ready", seen)
        os.write(master, b"\x1d")
        read_until(master, b"vmm: left (Ctrl-]) after ", seen)
        assert proc.wait(timeout=60) == 0
        after = termios.tcgetattr(slave)
    finally:
        proc.kill()
        os.close(slave)
    read_to_end(master, seen)
    os.close(master)
    out = bytes(seen)
    assert out.startswith(b"\x1b[2mvmm: Ctrl-] leaves\x1b[0m\r\n")  # one dim hint line
    # In raw mode a line must end in CR LF to start the next one at the left.
    assert b"vmm: stage firmware " in out
    assert all(out[i - 1 : i] == b"\r" for i in range(len(out)) if out[i : i + 1] == b"\n"), out
    # The guest's "ready" had no newline: vmm adds one, so the next line starts at the left.
    assert b"ready\r\nvmm: left (Ctrl-]) after " in out
    assert after == before  # the terminal is given back as it was
