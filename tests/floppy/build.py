"""Floppy images for the floppy tests: a boot sector from tests/floppy/*.S in sector 0,
every later sector N filled with the 32-bit little-endian word N."""

from __future__ import annotations

import struct
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECTOR = 512


def boot_sector(name: str) -> bytes:
    """Assemble tests/floppy/<name>.S into a 512-byte boot sector linked at 0000:7C00."""
    with tempfile.TemporaryDirectory() as tmp:
        obj, binary = Path(tmp, "b.o"), Path(tmp, "b.bin")
        source = HERE / f"{name}.S"
        # -I: a boot sector may .include a file beside it (tests/vga/text.inc)
        for cmd in (["as", "--32", "-I", str(source.parent), "-o", str(obj), str(source)],
                    ["ld", "-m", "elf_i386", "-Ttext=0x7C00", "-e", "start", "--oformat", "binary",
                     "-o", str(binary), str(obj)]):  # fmt: skip
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode:
                raise RuntimeError(f"{cmd[0]} failed for {name}.S:\n{result.stderr}")
        data = binary.read_bytes()
    if len(data) != SECTOR or data[510:] != b"\x55\xaa":
        raise RuntimeError(f"{name}.S: not a 512-byte boot sector ({len(data)} bytes)")
    return data


def floppy_image(name: str, path: Path, kib: int = 1440) -> Path:
    """tests/floppy/<name>.S as the boot sector of a ``kib`` KiB floppy image at ``path``."""
    sectors = kib * 1024 // SECTOR
    body = b"".join(struct.pack("<I", n) * (SECTOR // 4) for n in range(1, sectors))
    path.write_bytes(boot_sector(name) + body)
    return path
