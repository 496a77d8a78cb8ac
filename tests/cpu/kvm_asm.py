"""Assemble tiny test guests with GNU binutils (as, ld, objcopy) into flat binaries.

``assemble(source)`` links at address 0 and returns the bytes of ``.text``;
``reset_rom(source)`` returns a 64 KiB BIOS-style ROM for F000:0000 whose reset vector
(F000:FFF0) far-jumps to the start of ``source``. Sources use Intel syntax and start in
``.code16``; they may switch with ``.code32`` / ``.code64``. ``ROM`` (0xF0000) is defined,
so the linear address of a label is ``ROM + label``.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from pathlib import Path

from tests.conftest import require_tool

ROM_SIZE = 0x10000
ROM_BASE = 0xF0000
_CACHE = Path(tempfile.gettempdir()) / "vmm-kvm-test-asm"

_PROLOGUE = """\
    .intel_syntax noprefix
    .set ROM, 0xF0000
    .text
    .globl _start
_start:
    .code16
"""
_RESET_VECTOR = """
    .code16
    .org 0xFFF0
    .byte 0xEA            # jmp far F000:0000
    .word 0
    .word 0xF000
    .org 0x10000
"""


def assemble(source: str) -> bytes:
    """Flat binary of ``source`` linked at 0 (cached by content in the temp directory)."""
    text = _PROLOGUE + source + "\n"
    key = hashlib.sha256(text.encode()).hexdigest()[:20]
    out = _CACHE / f"{key}.bin"
    if out.exists():
        return out.read_bytes()
    for tool in ("as", "ld", "objcopy"):
        require_tool(tool)
    _CACHE.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src, obj, elf = Path(tmp, "guest.S"), Path(tmp, "guest.o"), Path(tmp, "guest.elf")
        src.write_text(text)
        for command in (["as", "--64", "-o", str(obj), str(src)],
                        ["ld", "-m", "elf_x86_64", "-Ttext=0", "-e", "_start", "-o", str(elf), str(obj)],
                        ["objcopy", "-O", "binary", "-j", ".text", str(elf), str(Path(tmp, "guest.bin"))]):  # fmt: skip
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode:
                raise RuntimeError(f"{command[0]} failed:\n{result.stderr}\n--- source ---\n{text}")
        data = Path(tmp, "guest.bin").read_bytes()
    tmp_out = out.with_suffix(".tmp")
    tmp_out.write_bytes(data)
    tmp_out.replace(out)
    return data


def reset_rom(source: str) -> bytes:
    """A 64 KiB ROM: ``source`` at F000:0000, the reset vector jumping to it."""
    data = assemble(source + _RESET_VECTOR)
    assert len(data) == ROM_SIZE, f"guest too large or misplaced: {len(data)} bytes"
    return data
