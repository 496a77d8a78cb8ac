"""Command-line flags of the `pc` machine's PCI devices (`vmm run`, `step`, `trace`...).

``--machine isapc|pc``, ``--virtio-disk FILE[,ro]`` (repeatable), ``--nic
KIND[,mac=MAC][,pcap=FILE]`` (repeatable; ``none`` for no NIC), ``--balloon[=MIB]``,
``--no-rng``. Kept here so the CLI module only forwards to them.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from vmm.config import DiskConfig, MachineConfig, NicConfig
from vmm.errors import ConfigError

MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
NIC_KINDS = ("user", "loopback", "null", "none")


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--machine", choices=["isapc", "pc"],
                   help="machine type as QEMU's -M: isapc (default: ISA only) or pc (adds PCI and virtio)")  # fmt: skip
    p.add_argument("--virtio-disk", metavar="IMG[,ro]", action="append",
                   help="a virtio-blk disk (raw or VMDK); repeatable; needs --machine pc")  # fmt: skip
    p.add_argument("--nic", metavar="KIND[,mac=M][,pcap=F]", action="append",
                   help="virtio-net NIC: loopback, null, user or none; repeatable; needs --machine pc")  # fmt: skip
    p.add_argument("--balloon", metavar="MIB", nargs="?", const=0, type=int,
                   help="a virtio-balloon; MIB: how much memory to ask the guest to give back at power-on")  # fmt: skip
    p.add_argument("--no-rng", action="store_true", help="no virtio-rng on the pc machine")


def apply_flags(config: MachineConfig, args: argparse.Namespace) -> None:
    machine = getattr(args, "machine", None)
    if machine:
        config.machine = machine
    pci_flags = [flag for flag, value in (("--virtio-disk", getattr(args, "virtio_disk", None)),
                                         ("--nic", getattr(args, "nic", None)),
                                         ("--balloon", getattr(args, "balloon", None)))
                 if value is not None]  # fmt: skip
    if pci_flags and config.machine != "pc":
        raise ConfigError(f"{pci_flags[0]}: virtio devices sit on PCI, add --machine pc")
    first_free = len(config.virtio_disks)
    for i, spec in enumerate(getattr(args, "virtio_disk", None) or []):
        path, _, options = spec.partition(",")
        if options not in ("", "ro"):
            raise ConfigError(f"--virtio-disk: unknown option {options!r} (only ro)")
        config.disks.append(DiskConfig(f"virtio{first_free + i}", Path(path), read_only=options == "ro"))
    nics = getattr(args, "nic", None)
    if nics:
        config.nics = [] if nics == ["none"] else [parse_nic(spec, f"ethernet{i}") for i, spec in enumerate(nics)]
    if getattr(args, "balloon", None) is not None:
        config.balloon = True
        config.balloon_target_mb = args.balloon
    if getattr(args, "no_rng", False):
        config.rng = False


def parse_nic(spec: str, slot: str) -> NicConfig:
    kind, *options = spec.split(",")
    if kind not in NIC_KINDS or kind == "none":
        raise ConfigError(f"--nic: unknown kind {kind!r} (choose {', '.join(NIC_KINDS)})")
    nic = NicConfig(slot=slot, connection=kind)
    for option in options:
        key, _, value = option.partition("=")
        if key == "mac" and MAC.match(value):
            nic.mac = value.lower()
        elif key == "pcap" and value:
            nic.pcap = Path(value)
        else:
            raise ConfigError(f"--nic: bad option {option!r} (mac=52:54:00:12:34:56 or pcap=FILE)")
    return nic
