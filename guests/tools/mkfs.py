#!/usr/bin/env python3
"""Build a TOYFS read-only file-system image (stdlib only).

Usage: mkfs.py -o fs.img /bin/init=build/init.elf /etc/services=etc/services ...

Format (all integers little-endian; the kernel's reader is guests/kernel/fs.c):

  offset 0   superblock, 64 bytes:
               magic    8 bytes  b"TOYFS1\\0\\0"
               version  u32      1
               nfiles   u32
               dir_off  u32      64 (directory follows the superblock)
               size     u32      total image size in bytes (a multiple of 512)
               reserved 40 bytes
  offset 64  directory: nfiles entries of 64 bytes:
               name     48 bytes absolute path, NUL padded ("/bin/init")
               offset   u32      byte offset of the data from the start of the image
               size     u32      length in bytes
               flags    u32      bit 0: executable (an ELF the kernel may run)
               reserved u32
  then       file data, each file starting on a 512-byte (sector) boundary.
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

MAGIC = b"TOYFS1\0\0"
VERSION = 1
SUPERBLOCK = struct.Struct("<8sIIII40x")
ENTRY = struct.Struct("<48sIIII")
SECTOR = 512
NAME_MAX = 47
FLAG_EXEC = 1


def align(n: int, to: int = SECTOR) -> int:
    return (n + to - 1) // to * to


def build(files: list[tuple[str, bytes]]) -> bytes:
    names = [name for name, _ in files]
    if len(set(names)) != len(names):
        raise ValueError("duplicate file names")
    for name in names:
        if not name.startswith("/") or len(name.encode()) > NAME_MAX:
            raise ValueError(f"bad file name {name!r}: must be absolute and at most {NAME_MAX} bytes")
    dir_off = SUPERBLOCK.size
    offset = align(dir_off + ENTRY.size * len(files))
    entries = []
    data = bytearray()
    for name, content in files:
        flags = FLAG_EXEC if content[:4] == b"\x7fELF" else 0
        entries.append(ENTRY.pack(name.encode(), offset + len(data), len(content), flags, 0))
        data += content
        data += bytes(align(len(data)) - len(data))
    total = offset + len(data)
    head = SUPERBLOCK.pack(MAGIC, VERSION, len(files), dir_off, total) + b"".join(entries)
    head += bytes(offset - len(head))
    return head + bytes(data)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", required=True, type=Path)
    parser.add_argument("files", nargs="+", help="NAME=HOSTPATH")
    args = parser.parse_args(argv)
    files = []
    for spec in args.files:
        name, sep, host = spec.partition("=")
        if not sep:
            parser.error(f"{spec!r}: expected NAME=HOSTPATH")
        files.append((name, Path(host).read_bytes()))
    try:
        image = build(files)
    except ValueError as exc:
        print(f"mkfs.py: {exc}", file=sys.stderr)
        return 1
    tmp = args.output.with_suffix(args.output.suffix + ".tmp")
    tmp.write_bytes(image)
    tmp.replace(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
