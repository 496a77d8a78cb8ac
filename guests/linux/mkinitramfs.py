"""Build the Linux guest's initramfs: a gzip'd cpio archive ("newc" format, as the kernel's
Documentation/driver-api/early-userspace/buffer-format.rst describes it).

Written here rather than with cpio(1) so that the archive holds /dev/console (the kernel
opens it for init's stdin/stdout before devtmpfs is mounted) without root, and so the
build is reproducible: every entry has owner 0, mtime 0 and a fixed inode number.

The requested kernel modules come with every module they depend on, read from each
module's .modinfo section ("depends="), and /etc/modules lists them in load order.
"""

from __future__ import annotations

import argparse
import gzip
import stat
import sys
from pathlib import Path

from elftools.elf.elffile import ELFFile


class Cpio:
    def __init__(self) -> None:
        self.data = bytearray()
        self.inode = 1

    def _entry(self, name: str, mode: int, body: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        encoded = name.encode() + b"\0"
        fields = (self.inode, mode, 0, 0, 1, 0, len(body), 0, 0, rdev[0], rdev[1], len(encoded), 0)
        self.inode += 1
        self.data += b"070701" + b"".join(b"%08X" % value for value in fields) + encoded
        self.data += bytes(-len(self.data) % 4) + body
        self.data += bytes(-len(self.data) % 4)

    def directory(self, name: str) -> None:
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name: str, body: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, body)

    def char_device(self, name: str, major: int, minor: int) -> None:
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return bytes(self.data + bytes(-len(self.data) % 512))


def module_name(path: Path) -> str:
    return path.name.removesuffix(".ko").replace("-", "_")


def modinfo_depends(path: Path) -> list[str]:
    with path.open("rb") as f:
        section = ELFFile(f).get_section_by_name(".modinfo")
        fields = section.data().split(b"\0") if section is not None else []
    for field in fields:
        if field.startswith(b"depends="):
            return [name.replace("-", "_") for name in field[8:].decode().split(",") if name]
    return []


def load_order(modules_dir: Path, wanted: list[str]) -> list[Path]:
    """The modules of ``wanted`` and their dependencies, each after what it depends on."""
    available = {module_name(path): path for path in modules_dir.rglob("*.ko")}
    builtin_file = modules_dir / "modules.builtin"
    builtin = {module_name(Path(line)) for line in builtin_file.read_text().split()} if builtin_file.exists() else set()
    order: list[Path] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in builtin or any(module_name(path) == name for path in order):
            return
        if name not in available:
            sys.exit(f"mkinitramfs: kernel module {name} is neither in {modules_dir} nor built in")
        if name in visiting:
            sys.exit(f"mkinitramfs: kernel modules depend on each other in a cycle through {name}")
        visiting.add(name)
        for dependency in modinfo_depends(available[name]):
            visit(dependency)
        order.append(available[name])

    for name in wanted:
        visit(name.replace("-", "_"))
    return order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", type=Path, required=True, help="the script that becomes /init")
    parser.add_argument("--busybox", type=Path, required=True, help="a static busybox binary")
    parser.add_argument("--modules-dir", type=Path, required=True, help="lib/modules/VERSION of the kernel")
    parser.add_argument("--module", action="append", default=[], help="a module to include (repeat)")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()

    archive = Cpio()
    for directory in ("bin", "dev", "etc", "lib", "lib/modules", "proc", "sys", "tmp"):
        archive.directory(directory)
    archive.char_device("dev/console", 5, 1)
    archive.file("init", args.init.read_bytes(), 0o755)
    archive.file("bin/busybox", args.busybox.read_bytes(), 0o755)
    modules = load_order(args.modules_dir, args.module)
    for path in modules:
        archive.file(f"lib/modules/{path.name}", path.read_bytes())
    archive.file("etc/modules", "".join(path.name.removesuffix(".ko") + "\n" for path in modules).encode())
    packed = gzip.compress(archive.finish(), compresslevel=9, mtime=0)
    temporary = args.output.with_name(args.output.name + ".tmp")
    temporary.write_bytes(packed)
    temporary.replace(args.output)
    print(f"{args.output}: {len(packed)} bytes, modules: {' '.join(module_name(p) for p in modules)}")


if __name__ == "__main__":
    main()
