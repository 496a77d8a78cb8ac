"""Command-line flags of the `pc` machine's PCI devices (`vmm run`, `step`, `trace`...).

``--machine isapc|pc``, ``--virtio-disk FILE[,ro]`` (repeatable), ``--nic
KIND[,mac=MAC][,pcap=FILE][,OPTION=VALUE...]`` (repeatable; ``none`` for no NIC; ``user``'s
options in vmm/net/slirp_options.py), ``--balloon[=MIB]``,
``--no-rng``. Kept here so the CLI module only forwards to them.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from vmm.config import DiskConfig, MachineConfig, NicConfig
from vmm.errors import ConfigError

MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
NIC_KINDS = ("user", "loopback", "null", "switch", "none")
SWITCH_OPTIONS = ("vlan", "trunk", "native")


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--machine", choices=["isapc", "pc"],
                   help="machine type as QEMU's -M: isapc (default: ISA only) or pc (adds PCI, virtio, "
                        "a local APIC, an I/O APIC and the MP table)")  # fmt: skip
    p.add_argument("--virtio-disk", metavar="IMG[,ro]", action="append",
                   help="a virtio-blk disk (raw or VMDK); repeatable; needs --machine pc")  # fmt: skip
    p.add_argument("--nic", metavar="KIND[,mac=M][,pcap=F]", action="append",
                   help="virtio-net NIC: loopback, null, user, switch=PATH or none; repeatable; needs "
                        "--machine pc; pcap=FILE records its frames. "
                        "user (NAT on libslirp, as QEMU's -netdev user): the guest gets 10.0.2.15 by DHCP, "
                        "gateway 10.0.2.2, DNS 10.0.2.3; options net=ADDR/MASK, host=, dns=, dhcpstart=, "
                        "restrict=on, ipv6=on, hostfwd=[tcp|udp]:[HOSTADDR]:PORT-[GUESTADDR]:GUESTPORT "
                        "(repeatable; HOSTADDR 127.0.0.1 unless named; PORT 0: any free port, printed). "
                        "switch=PATH[,vlan=N|trunk=N,M[,native=N]]: a port of `vmm switch PATH`")  # fmt: skip
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
    from vmm.net.slirp_options import USER_OPTIONS, parse_user_options

    kind, *options = spec.split(",")
    kind, _, switch_path = kind.partition("=")
    if kind not in NIC_KINDS or kind == "none" or bool(switch_path) != (kind == "switch"):
        raise ConfigError(f"--nic: unknown kind {kind!r} (choose {', '.join(NIC_KINDS)}; switch=PATH)")
    nic = NicConfig(slot=slot, connection=kind)
    if kind == "switch":
        nic.options["switch"] = switch_path
    last = None
    for option in options:
        key, _, value = option.partition("=")
        if kind == "switch" and last == "trunk" and not value and key.isdigit():
            nic.options["trunk"] += f":{key}"  # trunk=10,20: the VLAN list goes on after the comma
        elif key == "mac" and MAC.match(value):
            nic.mac = value.lower()
        elif key == "pcap" and value:
            nic.pcap = Path(value)
        elif kind == "user" and key in USER_OPTIONS and value:
            # hostfwd= repeats: the rules are kept in order, joined with ';'
            nic.options[key] = f"{nic.options[key]};{value}" if key == "hostfwd" and key in nic.options else value
        elif kind == "switch" and key in SWITCH_OPTIONS and value:
            nic.options[key] = value
        else:
            user = "; user: net=, host=, dns=, dhcpstart=, restrict=, ipv6=, hostfwd=" if kind == "user" else ""
            switch = "; vlan=N, trunk=N,M, native=N" if kind == "switch" else ""
            raise ConfigError(f"--nic: bad option {option!r} (mac=52:54:00:12:34:56 or pcap=FILE{user}{switch})")
        last = key if value else last
    if kind == "user":
        parse_user_options(nic.options)  # a bad address or rule is an error before the machine is built
    if kind == "switch":
        from vmm.net.switch import parse_port_mode

        parse_port_mode(nic.options, "--nic switch")  # a bad VLAN is an error before the machine is built
    return nic
