"""Build the BIOS test programs in tests/bios/*.S into bootable raw disk images.

Each test is a small real-mode program: a boot sector (the loader in
common.inc) plus up to 15 more sectors of code, linked at 0000:7C00 by
boot.ld with GNU as/ld/objcopy.  The image is a raw disk: the program in LBA
0-15, and every later sector filled with its own LBA as 32-bit little-endian
words, so a test can tell exactly which sector it read.  Big images are
sparse: only the sectors listed in the layout are written.
"""

from __future__ import annotations

import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECTOR = 512
PROGRAM_SECTORS = 16  # keep in step with boot.ld


@dataclass(frozen=True)
class DiskLayout:
    sectors: int  # size of the disk in 512-byte sectors
    patterned: tuple[tuple[int, int], ...]  # [first, end) ranges that get the LBA pattern


FOUR_MIB = DiskLayout(sectors=8192, patterned=((PROGRAM_SECTORS, 8192),))
LBA48_EDGE = 1 << 28  # the first sector LBA28 cannot name
LAYOUTS: dict[str, DiskLayout] = {
    # 2^28 + 2048 sectors (128 GiB and 1 MiB): reads around and beyond 2^28 need LBA48
    "disk_lba": DiskLayout(
        sectors=LBA48_EDGE + 2048,
        patterned=((PROGRAM_SECTORS, 2048), (LBA48_EDGE - 64, LBA48_EDGE + 2048)),
    ),
}


def program_names() -> list[str]:
    """Every test program: tests/bios/<name>.S."""
    return sorted(p.stem for p in HERE.glob("*.S"))


def pattern_sector(lba: int) -> bytes:
    return struct.pack("<I", lba & 0xFFFFFFFF) * (SECTOR // 4)


def assemble(name: str, out_dir: Path) -> bytes:
    """Assemble and link tests/bios/<name>.S; returns the program bytes."""
    source = HERE / f"{name}.S"
    if not source.exists():
        raise FileNotFoundError(f"no BIOS test program {source}")
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        obj, elf, binary = Path(tmp, "t.o"), Path(tmp, "t.elf"), Path(tmp, "t.bin")
        steps = [
            ["as", "--32", "-I", str(HERE), "-o", str(obj), str(source)],
            ["ld", "-m", "elf_i386", "-T", str(HERE / "boot.ld"), "-o", str(elf), str(obj)],
            ["objcopy", "-O", "binary", str(elf), str(binary)],
        ]
        for cmd in steps:
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode:
                raise RuntimeError(f"{cmd[0]} failed for {source.name}:\n{result.stderr}")
        program = binary.read_bytes()
    if len(program) > PROGRAM_SECTORS * SECTOR or program[510:512] != b"\x55\xaa":
        raise RuntimeError(f"{name}: bad program image ({len(program)} bytes)")
    return program


def build_boot_image(name: str, out_dir: Path) -> Path:
    """Assemble tests/bios/<name>.S and write out_dir/<name>.img; returns its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    program = assemble(name, out_dir)
    layout = LAYOUTS.get(name, FOUR_MIB)
    image = out_dir / f"{name}.img"
    partial = image.with_suffix(".img.tmp")
    with open(partial, "wb") as f:
        f.truncate(layout.sectors * SECTOR)  # sparse where not written
        f.write(program)
        for first, end in layout.patterned:
            f.seek(first * SECTOR)
            f.write(b"".join(pattern_sector(lba) for lba in range(first, end)))
    partial.replace(image)
    return image


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent.parent / "firmware" / "build" / "tests"
    for test in program_names():
        print(build_boot_image(test, target))
