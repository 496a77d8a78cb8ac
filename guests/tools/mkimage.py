#!/usr/bin/env python3
"""Assemble the toyos disk image (stdlib only).

Layout, in 512-byte sectors:
  LBA 0          boot sector (boot/boot.S)
  LBA 1          boot-parameters sector, read by the boot sector to 0x7E00:
                   0  magic "TOYOSBP1"
                   8  u32 stage2 LBA       12 u32 stage2 sectors
                  16  u32 kernel LBA       20 u32 kernel sectors
                  24  u32 fs LBA           28 u32 fs sectors
                  32  u32 disk sectors     (36..63 reserved)
                  64  kernel command line, NUL terminated (at most 255 bytes)
  LBA 2..33      stage 2 (boot/stage2.S), padded to 32 sectors, read to 0x8000
  LBA 34..       kernel ELF file, padded to a whole sector
  then           TOYFS file system (tools/mkfs.py)
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

SECTOR = 512
STAGE2_LBA = 2
STAGE2_SECTORS = 32
PARAMS = struct.Struct("<8sIIIIIII")
CMDLINE_OFFSET = 64
CMDLINE_MAX = 255


def sectors(data: bytes) -> int:
    return (len(data) + SECTOR - 1) // SECTOR


def pad(data: bytes) -> bytes:
    return data + bytes(sectors(data) * SECTOR - len(data))


def build(boot: bytes, stage2: bytes, kernel: bytes, fs: bytes, cmdline: str) -> bytes:
    if len(boot) != SECTOR or boot[510:] != b"\x55\xaa":
        raise ValueError("boot sector must be 512 bytes ending in 55 AA")
    if sectors(stage2) > STAGE2_SECTORS:
        raise ValueError(f"stage 2 is {len(stage2)} bytes, more than {STAGE2_SECTORS} sectors")
    if kernel[:4] != b"\x7fELF":
        raise ValueError("kernel is not an ELF file")
    cmd = cmdline.encode()
    if len(cmd) > CMDLINE_MAX:
        raise ValueError(f"command line longer than {CMDLINE_MAX} bytes")
    kernel_lba = STAGE2_LBA + STAGE2_SECTORS
    fs_lba = kernel_lba + sectors(kernel)
    total = fs_lba + sectors(fs)
    params = PARAMS.pack(b"TOYOSBP1", STAGE2_LBA, STAGE2_SECTORS, kernel_lba, sectors(kernel),
                         fs_lba, sectors(fs), total)
    params = params + bytes(CMDLINE_OFFSET - len(params)) + cmd
    params = params + bytes(SECTOR - len(params))
    stage2 = stage2 + bytes(STAGE2_SECTORS * SECTOR - len(stage2))
    return boot + params + stage2 + pad(kernel) + pad(fs)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boot", required=True, type=Path)
    parser.add_argument("--stage2", required=True, type=Path)
    parser.add_argument("--kernel", required=True, type=Path)
    parser.add_argument("--fs", required=True, type=Path)
    parser.add_argument("--cmdline", default="")
    parser.add_argument("-o", "--output", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        image = build(args.boot.read_bytes(), args.stage2.read_bytes(), args.kernel.read_bytes(),
                      args.fs.read_bytes(), args.cmdline)
    except ValueError as exc:
        print(f"mkimage.py: {exc}", file=sys.stderr)
        return 1
    tmp = args.output.with_suffix(args.output.suffix + ".tmp")
    tmp.write_bytes(image)
    tmp.replace(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
