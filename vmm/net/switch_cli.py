"""`vmm switch PATH` (serve a virtual switch) and `vmm switch show PATH` (print its state)."""

from __future__ import annotations

import argparse
from pathlib import Path

from vmm.errors import ConfigError

EPILOG = """\
examples:
  vmm switch /tmp/sw0 --pcap /tmp/sw0-captures
  vmm run --machine pc --nic switch=/tmp/sw0,vlan=10 ...        # an access port in VLAN 10
  vmm run --machine pc --nic switch=/tmp/sw0,trunk=10,20 ...    # a trunk carrying VLANs 10 and 20
  qemu-system-x86_64 ... -netdev stream,id=n0,server=off,addr.type=unix,addr.path=/tmp/sw0 \\
                         -device virtio-net-pci,netdev=n0      # QEMU gets the --default mode
  vmm switch show /tmp/sw0

Ports: an access port (vlan=N) is untagged on its wire; a trunk (trunk=N,M[,native=N]) passes
802.1Q-tagged frames of its VLANs, and untagged frames belong to its native VLAN. Stations are
learned per VLAN and forgotten after --ageing seconds of host time. --pcap DIR writes one
portN-NAME.pcap per port (host timestamps; tags as on that port's wire).
"""


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    p.add_argument("words", nargs="+", metavar="PATH | show PATH",
                   help="the UNIX socket to serve the switch on; `show PATH` prints a running switch's "
                        "ports, VLANs, MAC table and counters")  # fmt: skip
    p.add_argument("--pcap", metavar="DIR", type=Path, help="write each port's frames to DIR/portN-NAME.pcap")
    p.add_argument("--ageing", metavar="SECONDS", type=float, default=300.0,
                   help="forget a station silent this long (default 300, as 802.1Q recommends)")  # fmt: skip
    p.add_argument("--default", metavar="vlan=N|trunk=N,M[,native=N]", default="vlan=1",
                   help="the mode of a port whose peer sends no hello (QEMU's -netdev stream)")  # fmt: skip
    p.add_argument("--uplink", metavar="KIND[,OPTS][,vlan=N]", action="append", default=[],
                   help="attach a NIC backend as one more port, e.g. user (NAT to the host's network)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="show: print JSON instead of text")
    p.set_defaults(func=cmd_switch)


def split_mode(spec: str, where: str) -> tuple[dict[str, str], dict[str, str]]:
    """``a=1,vlan=10,trunk=10,20`` -> (backend options, port-mode options)."""
    mode: dict[str, str] = {}
    other: dict[str, str] = {}
    last = None
    for item in filter(None, spec.split(",")):
        key, sep, value = item.partition("=")
        if not sep and last == "trunk" and key.isdigit():
            mode["trunk"] += f":{key}"
            continue
        if not sep:
            raise ConfigError(f"{where}: {item!r} is not KEY=VALUE")
        (mode if key in ("vlan", "trunk", "native") else other)[key] = value
        last = key
    return other, mode


def cmd_switch(args: argparse.Namespace) -> int:
    from vmm.net.switch import parse_port_mode

    words = args.words
    if words[0] == "show":
        if len(words) != 2:
            raise ConfigError("usage: vmm switch show PATH")
        from vmm.net.switch_server import show_switch

        print(show_switch(Path(words[1]), as_json=args.json))
        return 0
    if len(words) != 1:
        raise ConfigError("usage: vmm switch PATH [--pcap DIR] (or vmm switch show PATH)")
    if args.ageing <= 0:
        raise ConfigError("--ageing: a positive number of seconds")
    _, default = split_mode(args.default, "--default")
    default_mode = parse_port_mode(default, "--default")
    from vmm.net.backend import open_backend
    from vmm.net.switch_server import run_switch

    uplinks = []
    for spec in args.uplink:
        kind, _, rest = spec.partition(",")
        options, mode = split_mode(rest, f"--uplink {kind}")
        uplinks.append((open_backend(kind, options, name=f"uplink-{kind}"), parse_port_mode(mode, "--uplink"),
                        f"uplink-{kind}"))  # fmt: skip
    return run_switch(Path(words[0]), default_mode, args.pcap, int(args.ageing * 1e9), uplinks)
