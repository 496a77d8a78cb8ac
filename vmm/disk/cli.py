"""The ``vmm disk`` command: create, info, convert, check, commit.

``add_arguments("disk", parser)`` adds it to the main CLI; each subcommand's ``func`` takes the
parsed Namespace and returns an exit status, raising DiskError for bad input (the main CLI
turns that into one line on stderr). ``python -m vmm.disk.cli create ...`` runs it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable

from vmm.cli.progress import Progress
from vmm.confine import FileScope
from vmm.disk.base import SECTOR_SIZE
from vmm.disk.open import open_disk
from vmm.disk.vmdk.check import check_disk
from vmm.disk.vmdk.commit import commit
from vmm.disk.vmdk.convert import convert, default_type, remove_stale_staging
from vmm.disk.vmdk.create import DISK_TYPES, SPLIT_EXTENT_SECTORS, create_child, create_disk
from vmm.errors import DiskError, VmmError
from vmm.sizes import parse_size


def disk_size(text: str) -> int:
    """'64M', '1G', '512K', '1048576' → bytes (binary units, as qemu-img reads them)."""
    size = parse_size(text, "SIZE")
    if size % SECTOR_SIZE:
        raise DiskError(f"size {text!r} ({size} bytes) is not a multiple of {SECTOR_SIZE} bytes")
    return size


def human(size: int) -> str:
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} B"


def cmd_create(args: argparse.Namespace) -> int:
    if args.parent:
        create_child(args.parent, args.file)
        print(f"{args.file}: delta disk over {args.parent}")
        return 0
    if args.size is None:
        raise DiskError("disk create: SIZE is required (unless --parent is given)")
    size = disk_size(args.size)
    disk_type = args.type or default_type(args.file)
    create_disk(args.file, size // SECTOR_SIZE, disk_type, **_options(args, disk_type))
    print(f"{args.file}: {disk_type}, {human(size)}")
    return 0


def _options(args: argparse.Namespace, disk_type: str) -> dict[str, int | str]:
    if disk_type == "raw":
        return {}
    options: dict[str, int | str] = {"adapter_type": args.adapter_type}
    if disk_type.startswith("twoGb"):
        options["extent_sectors"] = args.extent_sectors
    return options


def _scope(args: argparse.Namespace) -> FileScope:
    """What the disk chain may reach besides its own folder (vmm.confine)."""
    return FileScope.of(".", getattr(args, "allow_path", []), getattr(args, "follow_symlinks", False))


def cmd_info(args: argparse.Namespace) -> int:
    with open_disk(args.file, read_only=True, scope=_scope(args)) as disk:
        info = disk.info()  # type: ignore[attr-defined]
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"image: {info['filename']}")
    print(f"type: {info['type']}")
    print(f"virtual size: {human(info['virtual_size'])} ({info['virtual_size']} bytes)")
    if "allocated_size" in info:
        print(f"allocated size: {human(info['allocated_size'])} ({info['allocated_size']} bytes)")
    print(f"disk size: {human(info['disk_size'])}")
    if "cid" in info:
        print(f"cid: {info['cid']}  parent cid: {info['parent_cid']}")
    print("extents:")
    for e in info["extents"]:
        extra = f" grain {e['grain_size']} sectors" if e.get("grain_size") else ""
        extra += " compressed" if e.get("compressed") else ""
        print(f"  {e.get('access', 'RW')} {e['sectors']} {e['type']} {e['filename'] or ''}{extra}")
    print("chain: " + " -> ".join(info["chain"]))
    return 0


SINGLE_FILE_TYPES = ("raw", "monolithicSparse", "streamOptimized")


def cmd_convert(args: argparse.Namespace) -> int:
    disk_type = args.type or default_type(args.dst)
    target = args.dst
    # A convert killed earlier left its staging folder (and maybe extents without their
    # descriptor) beside the destination: clear those first, whatever happens next.
    remove_stale_staging(os.path.dirname(os.path.abspath(args.dst)))
    if os.path.lexists(args.dst):
        if not args.force:
            raise DiskError(f"{args.dst}: already exists (--force replaces it)")
        if disk_type not in SINGLE_FILE_TYPES:
            raise DiskError(f"{args.dst}: already exists, and a {disk_type} disk has extent files beside it: "
                            "remove them first (--force replaces only single-file disks)")  # fmt: skip
        # Written under the same name in a folder beside it (a VMDK names its own extent
        # file), then renamed over it: a failed convert keeps the old disk.
        folder, name = os.path.split(os.path.abspath(args.dst))
        scratch = tempfile.mkdtemp(prefix=f".{name}.", dir=folder)
        target = os.path.join(scratch, name)
    try:
        with Progress(f"converting to {disk_type}") as progress:
            convert(args.src, target, disk_type, progress, scope=_scope(args), **_options(args, disk_type))
        if target != args.dst:
            os.replace(target, args.dst)
    finally:
        if target != args.dst:
            shutil.rmtree(os.path.dirname(target), ignore_errors=True)
    with open_disk(args.dst, read_only=True) as disk:
        size = disk.capacity * SECTOR_SIZE
    print(f"{args.dst}: {disk_type}, {human(size)}, converted from {args.src}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    report = check_disk(args.file, _scope(args))
    if report.ok and report.raw:
        print(f"{args.file}: a raw image (no metadata to check)")
        return 0
    for error in report.errors:
        print(f"error: {error}")
    if report.leaked_bytes:
        print(f"{report.leaked_bytes} bytes leaked (unreferenced space at the end of a file; harmless)")
    if report.ok:
        print(f"{args.file}: no errors ({report.allocated_grains} grains allocated)")
        return 0
    print(f"{args.file}: {len(report.errors)} error{'s' if len(report.errors) > 1 else ''}")
    return 3


def cmd_commit(args: argparse.Namespace) -> int:
    with Progress("committing") as progress:
        parent = commit(args.child, progress, _scope(args))
    print(f"{args.child}: committed into {parent}")
    return 0


def add_arguments(name: str, disk: argparse.ArgumentParser) -> None:
    """Add the subcommands of ``vmm disk`` to its parser."""
    sub = disk.add_subparsers(dest="disk_command", metavar="COMMAND", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        if name != "create":
            p.add_argument(
                "--allow-path",
                metavar="PATH",
                action="append",
                default=[],
                help="let the disk chain use this file or folder outside the disk's folder (repeatable)",
            )
            p.add_argument(
                "--follow-symlinks",
                action="store_true",
                help="follow symlinks the disk's descriptor leads to (refused by default)",
            )
        return p

    def type_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--type", choices=DISK_TYPES, help="disk type (default: monolithicSparse for *.vmdk, else raw)")
        p.add_argument(
            "--adapter-type",
            default="ide",
            choices=("ide", "buslogic", "lsilogic", "legacyESX"),
            help="ddb.adapterType of a new VMDK",
        )
        p.add_argument("--extent-sectors", type=int, default=SPLIT_EXTENT_SECTORS, help=argparse.SUPPRESS)

    p = add("create", cmd_create, "create an empty disk, or a delta disk over --parent")
    type_options(p)
    p.add_argument("--parent", help="make FILE a delta (child) disk of this VMDK")
    p.add_argument("file", metavar="FILE")
    p.add_argument("size", metavar="SIZE", nargs="?", help="bytes, or with a K, M, G, T suffix")

    p = add("info", cmd_info, "show type, sizes, extents and parent chain")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("file", metavar="FILE")

    p = add("convert", cmd_convert, "copy a disk into a new disk of any type")
    type_options(p)
    p.add_argument("src", metavar="SRC")
    p.add_argument("dst", metavar="DST")
    p.add_argument("--force", action="store_true", help="replace DST if it exists (single-file disk types)")

    p = add("check", cmd_check, "check grain tables and extents (exit 3 when damaged)")
    p.add_argument("file", metavar="FILE")

    p = add("commit", cmd_commit, "fold a delta disk into its parent")
    p.add_argument("child", metavar="CHILD")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vmm disk", description="Raw and VMDK disk images.")
    add_arguments("disk", parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return args.func(args)
    except VmmError as exc:
        print(f"vmm: {exc}", file=sys.stderr)
        return exc.exit_status
    except OSError as exc:
        print(f"vmm: {exc.filename or ''}: {exc.strerror}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
