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
    .set ROM, 0xF0000
    .set COM1, 0x3F8
    .set PASS, 0x10            # exit status 33
    .set FAIL, 0x7F            # exit status 255
_start:
{body}
"""
TRAILER = """
    .code16
    .org 0xFFF0
    .byte 0xEA
    .word _start
    .word 0xF000
    .org 0x10000
"""


ROMS = Path(__file__).resolve().parent / "roms"


def rom_source(name: str) -> str:
    return (ROMS / f"{name}.S").read_text()


def assemble_rom(body: str) -> bytes:
    """``body`` is assembly placed at F000:0000 (it may ``.include "common.inc"``);
    returns the 64 KiB ROM image."""
    source = TEMPLATE.format(body=body) + TRAILER
    includes = "".join(path.read_text() for path in sorted(ROMS.glob("*.inc")))
    key = hashlib.sha256((source + includes).encode()).hexdigest()[:16]
    _CACHE.mkdir(exist_ok=True)
    out = _CACHE / f"{key}.bin"
    if out.exists():
        return out.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        src, obj, elf = Path(tmp, "rom.S"), Path(tmp, "rom.o"), Path(tmp, "rom.elf")
        src.write_text(source)
        result = subprocess.run(["as", "--64", "-I", str(ROMS), "-o", str(obj), str(src)],
                                capture_output=True, text=True)  # fmt: skip
        if result.returncode:
            raise RuntimeError(f"as failed:\n{result.stderr}")
        subprocess.run(["ld", "-m", "elf_x86_64", "-Ttext=0", "-e", "_start", "-o", str(elf), str(obj)],
                       check=True, capture_output=True, text=True)  # fmt: skip
        subprocess.run(["objcopy", "-O", "binary", "-j", ".text", str(elf), str(out)], check=True)
    data = out.read_bytes()
    assert len(data) == ROM_SIZE, len(data)
    return data
