"""Assemble test ROMs from source with GNU as: 64 KiB images whose reset vector at
F000:FFF0 far-jumps to ``_start`` (offset 0 of the F000 segment), as a BIOS would."""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from pathlib import Path

ROM_SIZE = 0x10000
_CACHE = Path(tempfile.gettempdir()) / "vmm-test-roms"

TEMPLATE = """\
    .code16
    .intel_syntax noprefix
    .section .text
    .globl _start
_start:
{body}
    .org 0xFFF0
    .byte 0xEA
    .word _start
    .word 0xF000
    .org 0x10000
"""


def assemble_rom(body: str) -> bytes:
    """``body`` is assembly placed at F000:0000; returns the 64 KiB ROM image."""
    source = TEMPLATE.format(body=body)
    key = hashlib.sha256(source.encode()).hexdigest()[:16]
    _CACHE.mkdir(exist_ok=True)
    out = _CACHE / f"{key}.bin"
    if out.exists():
        return out.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        src, obj, elf = Path(tmp, "rom.S"), Path(tmp, "rom.o"), Path(tmp, "rom.elf")
        src.write_text(source)
        subprocess.run(["as", "--32", "-o", str(obj), str(src)], check=True, capture_output=True, text=True)
        subprocess.run(["ld", "-m", "elf_i386", "-Ttext=0", "-e", "_start", "-o", str(elf), str(obj)],
                       check=True, capture_output=True, text=True)  # fmt: skip
        subprocess.run(["objcopy", "-O", "binary", "-j", ".text", str(elf), str(out)], check=True)
    data = out.read_bytes()
    assert len(data) == ROM_SIZE, len(data)
    return data
