"""The bundle commands of the ``vmm`` command line: ``create``, ``show``, ``set``, ``nvram``.

The main CLI (vmm.cli.commands) calls :func:`add_arguments` for the command being run;
each command's ``func(args)`` returns the exit status and lets VmmError through for the
main CLI to print as one line.
"""

from __future__ import annotations

import argparse

from vmm.bundle import commands
from vmm.errors import ConfigError
from vmm.sizes import parse_memory_mb, parse_size


def cmd_create(args: argparse.Namespace) -> int:
    size = None if args.disk_size is None else parse_size(args.disk_size, "--disk-size")
    if size is None and args.from_image is None:
        size = 64 << 20
    memsize = parse_memory_mb(args.mem, "--mem") if args.mem else 64
    vmx = commands.create_bundle(args.name, size, from_image=args.from_image, memsize_mb=memsize)
    print(f"created {vmx.parent}/ ({vmx.name}, {vmx.stem}.nvram, {vmx.stem}.vmdk): run it with `vmm run {vmx}`")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    print(commands.show(args.bundle))
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    if args.delete:
        if args.value is not None:
            raise ConfigError("vmm set: --delete takes no VALUE")
        commands.set_key(args.bundle, args.key, None)
        print(f"{args.key} removed")
    else:
        if args.value is None:
            raise ConfigError("vmm set: VALUE is missing (or use --delete)")
        vmx = commands.set_key(args.bundle, args.key, args.value, force=args.force)
        print(f'{args.key} = "{commands.VmxFile.load(vmx).get(args.key)}"')
    return 0


def cmd_nvram_show(args: argparse.Namespace) -> int:
    print(commands.nvram_show(args.bundle))
    return 0


def cmd_nvram_set(args: argparse.Namespace) -> int:
    path = commands.nvram_set(args.bundle, args.key, args.value)
    print(f"{path.name}: {args.key} = {args.value}")
    return 0


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    {"create": _create_flags, "show": _show_flags, "set": _set_flags, "nvram": _nvram_flags}[name](parser)


def _create_flags(create: argparse.ArgumentParser) -> None:
    create.add_argument("name", metavar="NAME", help="the VM's name, or path/to/NAME")
    create.add_argument("--disk-size", metavar="SIZE", help="size of the new disk, e.g. 64M (default 64M)")
    create.add_argument("--from-image", metavar="IMG", help="copy a raw or VMDK image as the bundle's disk")
    create.add_argument("--mem", metavar="SIZE", help="guest RAM, e.g. 64M (default 64M)")
    create.set_defaults(func=cmd_create)


def _show_flags(show: argparse.ArgumentParser) -> None:
    show.add_argument("bundle", metavar="NAME.vmx", help="the bundle's .vmx or its folder")
    show.set_defaults(func=cmd_show)


def _set_flags(set_: argparse.ArgumentParser) -> None:
    set_.add_argument("bundle", metavar="NAME.vmx", help="the bundle's .vmx or its folder")
    set_.add_argument("key", metavar="KEY", help="e.g. memsize, ide0:1.fileName, vmm.accel")
    set_.add_argument("value", metavar="VALUE", nargs="?", help="the new value")
    set_.add_argument("--delete", action="store_true", help="remove KEY instead")
    set_.add_argument("--force", action="store_true", help="write a key vmm does not read (kept for other tools)")
    set_.set_defaults(func=cmd_set)


def _nvram_flags(nvram: argparse.ArgumentParser) -> None:
    nvram_sub = nvram.add_subparsers(dest="nvram_command", metavar="ACTION")
    nvram_sub.required = True
    nvram_show = nvram_sub.add_parser("show", help="boot order, BIOS options and CMOS bytes")
    nvram_show.add_argument("bundle", metavar="NAME.vmx", help="the bundle (.vmx or folder) or an .nvram file")
    nvram_show.set_defaults(func=cmd_nvram_show)
    nvram_set = nvram_sub.add_parser(
        "set", help="set boot.order (hdd,cdrom), bios.quiet, bios.serialConsole (TRUE/FALSE) or cmos.0xNN"
    )
    nvram_set.add_argument("bundle", metavar="NAME.vmx", help="the bundle (.vmx or folder) or an .nvram file")
    nvram_set.add_argument("key", metavar="KEY")
    nvram_set.add_argument("value", metavar="VALUE")
    nvram_set.set_defaults(func=cmd_nvram_set)
