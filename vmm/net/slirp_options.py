"""The options of `--nic user`, named as QEMU's ``-netdev user``.

``net=ADDR[/MASK]`` (10.0.2.0/24), ``host=ADDR`` (the gateway, net + 2), ``dns=ADDR``
(net + 3), ``dhcpstart=ADDR`` (the first address DHCP hands out, net + 15),
``restrict=on|off`` (on: the guest reaches nothing outside the virtual network; hostfwd
still works), ``ipv6=on|off`` (off by default, unlike QEMU: libslirp times its IPv6
router advertisements from its own random generator, which would make runs differ), and
``hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT`` (repeatable; HOSTADDR
defaults to 127.0.0.1 — QEMU's default is every address — and GUESTADDR to dhcpstart;
HOSTPORT 0 lets the kernel choose, and vmm prints the port it got).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from vmm.errors import ConfigError

USER_OPTIONS = ("net", "host", "dns", "dhcpstart", "restrict", "ipv6", "hostfwd")
HOSTFWD = re.compile(r"^(?P<proto>tcp|udp)?:(?P<haddr>[^:-]*):(?P<hport>\d{1,5})-(?P<gaddr>[^:]*):(?P<gport>\d{1,5})$")
ON = {"on": True, "yes": True, "y": True, "true": True, "off": False, "no": False, "n": False, "false": False}


@dataclass(frozen=True)
class HostForward:
    proto: str  # "tcp" | "udp"
    host_addr: ipaddress.IPv4Address
    host_port: int  # 0: the kernel chooses
    guest_addr: ipaddress.IPv4Address
    guest_port: int

    def __str__(self) -> str:
        return f"{self.proto}:{self.host_addr}:{self.host_port}-{self.guest_addr}:{self.guest_port}"


@dataclass
class UserNetOptions:
    network: ipaddress.IPv4Network = ipaddress.IPv4Network("10.0.2.0/24")
    host: ipaddress.IPv4Address = ipaddress.IPv4Address("10.0.2.2")
    dns: ipaddress.IPv4Address = ipaddress.IPv4Address("10.0.2.3")
    dhcp_start: ipaddress.IPv4Address = ipaddress.IPv4Address("10.0.2.15")
    restrict: bool = False
    ipv6: bool = False
    forwards: list[HostForward] = field(default_factory=list)


def _error(message: str) -> ConfigError:
    return ConfigError(f"--nic user: {message}")


def _address(key: str, text: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise _error(f"{key}={text!r} is not an IPv4 address") from None


def _switch(key: str, text: str) -> bool:
    if text.lower() not in ON:
        raise _error(f"{key}={text!r}: say on or off")
    return ON[text.lower()]


def parse_hostfwd(rule: str, guest_default: ipaddress.IPv4Address) -> HostForward:
    match = HOSTFWD.match(rule)
    if match is None:
        raise _error(f"hostfwd={rule!r}: expected [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT")
    host_port, guest_port = int(match["hport"]), int(match["gport"])
    if host_port > 65535 or not 1 <= guest_port <= 65535:
        raise _error(f"hostfwd={rule!r}: ports run 0-65535 on the host (0: any free one), 1-65535 in the guest")
    host = _address("hostfwd host address", match["haddr"]) if match["haddr"] else ipaddress.IPv4Address("127.0.0.1")
    guest = _address("hostfwd guest address", match["gaddr"]) if match["gaddr"] else guest_default
    return HostForward(match["proto"] or "tcp", host, host_port, guest, guest_port)


def parse_user_options(options: dict[str, str]) -> UserNetOptions:
    """Check `--nic user`'s options (from ``NicConfig.options``; repeated hostfwd= rules
    are joined with ';') and fill in QEMU's defaults relative to ``net=``."""
    unknown = sorted(set(options) - set(USER_OPTIONS))
    if unknown:
        raise _error(f"unknown option {unknown[0]!r} (known: {', '.join(USER_OPTIONS)})")
    result = UserNetOptions()
    if "net" in options:
        text = options["net"] if "/" in options["net"] else options["net"] + "/24"
        try:
            result.network = ipaddress.IPv4Network(text, strict=False)
        except ValueError:
            raise _error(f"net={options['net']!r} is not an IPv4 network (ADDR[/MASK], e.g. 10.0.2.0/24)") from None
        if result.network.num_addresses < 16:
            raise _error(f"net={options['net']!r}: the network needs at least 16 addresses (a /28)")
        base = int(result.network.network_address)
        result.host = ipaddress.IPv4Address(base + 2)
        result.dns = ipaddress.IPv4Address(base + 3)
        result.dhcp_start = ipaddress.IPv4Address(base + 15)
    for key, attribute in (("host", "host"), ("dns", "dns"), ("dhcpstart", "dhcp_start")):
        if key in options:
            setattr(result, attribute, _address(key, options[key]))
    for key, value in (("host", result.host), ("dns", result.dns), ("dhcpstart", result.dhcp_start)):
        if value not in result.network or value in (result.network.network_address, result.network.broadcast_address):
            raise _error(f"{key} {value} is not a host address of net {result.network}")
    if result.dns == result.host:
        raise _error(f"dns {result.dns} is the host address")
    result.restrict = _switch("restrict", options["restrict"]) if "restrict" in options else False
    result.ipv6 = _switch("ipv6", options["ipv6"]) if "ipv6" in options else False
    for rule in filter(None, options.get("hostfwd", "").split(";")):
        result.forwards.append(parse_hostfwd(rule, result.dhcp_start))
    return result
