"""`vmm screenshot`: stops the first time the guest waits (or at --at / --max-insns), prints
only the screen, and writes the PNG with the same mode as vmm's other files."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT, require_file

BIOS = ROOT / "firmware" / "build" / "bios.bin"

# A boot sector: print "screen test" with INT 10h, then wait for a key with INT 16h (the
# BIOS waits with STI; HLT) for ever.
WAITING_BOOT = bytes.fromhex(
    "31c0"    # xor ax, ax
    "8ed8"    # mov ds, ax
    "fc"      # cld
    "be197c"  # mov si, msg (0x7c19)
    "ac"      # next: lodsb
    "84c0"    # test al, al
    "7406"    # jz wait
    "b40e"    # mov ah, 0x0e
    "cd10"    # int 0x10
    "ebf5"    # jmp next
    "31c0"    # wait: xor ax, ax
    "cd16"    # int 0x16
    "ebfa"    # jmp wait
) + b"screen test\0"  # fmt: skip


def screenshot(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vmm", "screenshot", *args], capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_stops_when_the_guest_waits_and_prints_only_the_screen(tmp_path):
    require_file(BIOS)
    disk = tmp_path / "wait.img"
    disk.write_bytes(WAITING_BOOT.ljust(510, b"\0") + b"\x55\xaa" + bytes(512 * 63))
    png = tmp_path / "screen.png"
    proc = screenshot(str(disk), "--out", str(png))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "vmm BIOS 0.1" and lines[-1] == "screen test"  # no blank rows after it
    assert proc.stderr.startswith(f"vmm: {png}: the screen at instruction ")
    assert proc.stderr.rstrip().endswith("when the guest idles (waits for input or a timer)")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_mode & 0o777 == 0o644  # as vmm's other files, not a temp file's 0600

    at = screenshot(str(disk), "--out", str(png), "--at", "bootloader")
    assert at.returncode == 0 and "when stage bootloader starts" in at.stderr
    assert "screen test" not in at.stdout
    counted = screenshot(str(disk), "--out", str(png), "--max-insns", "100K")
    assert "the screen at instruction 100,0" in counted.stderr
    assert "when 100,000 instructions ran" in counted.stderr
