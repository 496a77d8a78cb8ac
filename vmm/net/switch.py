"""A learning Ethernet switch with IEEE 802.1Q VLANs: the forwarding logic, no I/O.

Source: IEEE 802.1Q-2018, 6.9 (the tag: TPID 0x8100, then the TCI: PCP 3 bits, DEI 1 bit,
VID 12 bits; VID 0 means "priority tag only", VID 0xFFF is reserved), 8.7-8.8 (learning
and forwarding: the filtering database is per VLAN, an unknown or group destination is
flooded to the other ports of the frame's VLAN) and 8.8.3 (ageing; 300 s recommended).

Every port is an access port (one VLAN: frames are untagged on its wire and carry that
VLAN inside the switch) or a trunk port (tagged frames of its allowed VLANs pass with
their tag; an untagged or priority-tagged frame belongs to its native VLAN, and frames of
the native VLAN leave it untagged). Frames from a port are untrusted: a runt, an
oversized frame, a tag with a reserved VID, a tagged frame on an access port, a VLAN the
port does not carry or a group source address is dropped and counted, never raised.
The filtering database is bounded (per port and in all), so a flood of random source
addresses only turns the switch into a hub for the unknown ones.

Time is whatever ``now_ns`` says: host time for `vmm switch`, the lab's virtual clock in
`vmm lab` (so ageing lands at the same point on every run).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from vmm.errors import ConfigError

TPID_8021Q = 0x8100
VID_MIN, VID_MAX = 1, 4094
ETH_HEADER = 14
TAG_SIZE = 4
MAX_FRAME = 65535 + ETH_HEADER + TAG_SIZE  # the largest frame a port accepts (untagged or tagged)
DEFAULT_AGEING_NS = 300 * 1_000_000_000  # 802.1Q 8.8.3's recommended ageing time
MAC_TABLE_LIMIT = 8192  # entries in all
MAC_PER_PORT_LIMIT = 1024  # entries one port may own
BROADCAST = b"\xff" * 6


@dataclass(frozen=True)
class PortMode:
    """What a port carries: ``vlan`` (access) or ``trunk`` (allowed VLANs) with ``native``."""

    vlan: int | None = 1
    trunk: frozenset[int] = frozenset()
    native: int | None = None

    @property
    def is_trunk(self) -> bool:
        return self.vlan is None

    def vlans(self) -> list[int]:
        if self.vlan is not None:
            return [self.vlan]
        return sorted(self.trunk | ({self.native} if self.native else set()))

    def describe(self) -> str:
        if self.vlan is not None:
            return f"access vlan {self.vlan}"
        native = f" native {self.native}" if self.native else " no native"
        return f"trunk {','.join(map(str, sorted(self.trunk)))}{native}"

    def to_dict(self) -> dict:
        if self.vlan is not None:
            return {"vlan": self.vlan}
        return {"trunk": sorted(self.trunk), "native": self.native}

    @classmethod
    def from_dict(cls, data: dict) -> PortMode:
        if not isinstance(data, dict):
            raise ConfigError("port mode: not a table")
        if "trunk" in data:
            trunk = data["trunk"]
            if not isinstance(trunk, list) or not all(isinstance(v, int) for v in trunk):
                raise ConfigError("port mode: trunk is not a list of VLAN IDs")
            return cls.trunk_of(trunk, data.get("native"))
        vlan = data.get("vlan", 1)
        if not isinstance(vlan, int) or isinstance(vlan, bool):
            raise ConfigError("port mode: vlan is not a number")
        return cls.access(vlan)

    @classmethod
    def access(cls, vlan: int) -> PortMode:
        check_vid(vlan, "vlan")
        return cls(vlan=vlan)

    @classmethod
    def trunk_of(cls, vlans, native: int | None = None) -> PortMode:
        vlans = frozenset(vlans)
        if not vlans and native is None:
            raise ConfigError("trunk: name at least one VLAN")
        for vid in vlans:
            check_vid(vid, "trunk")
        if native is not None:
            if not isinstance(native, int) or isinstance(native, bool):
                raise ConfigError("native: not a VLAN ID")
            check_vid(native, "native")
        return cls(vlan=None, trunk=vlans, native=native)


def check_vid(vid: int, what: str) -> int:
    if not VID_MIN <= vid <= VID_MAX:
        raise ConfigError(f"{what}={vid}: a VLAN ID is 1..4094 (0 and 4095 are reserved by 802.1Q)")
    return vid


def parse_port_mode(options: dict[str, str], where: str) -> PortMode:
    """``vlan=N`` or ``trunk=N:M:...`` / ``trunk=N,M`` (with optional ``native=N``)."""
    try:
        if "vlan" in options and "trunk" in options:
            raise ConfigError("vlan= and trunk= exclude each other")
        if "trunk" in options:
            vlans = [int(v) for v in options["trunk"].replace(":", " ").replace(",", " ").split()]
            native = int(options["native"]) if options.get("native") else None
            return PortMode.trunk_of(vlans, native)
        if "native" in options:
            raise ConfigError("native= goes with trunk=")
        return PortMode.access(int(options.get("vlan", "1")))
    except ValueError:
        raise ConfigError(f"{where}: a VLAN ID is a number 1..4094") from None
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def format_mac(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


@dataclass
class Port:
    """One port: its mode, where its frames go (``send``), and its counters."""

    number: int
    name: str
    mode: PortMode
    send: Callable[[bytes], None]
    counters: dict[str, int] = field(default_factory=dict)
    learned: int = 0
    tap: Callable[[bytes], None] | None = None  # pcap of the port's wire, both directions

    def count(self, what: str, n: int = 1) -> None:
        self.counters[what] = self.counters.get(what, 0) + n


@dataclass
class MacEntry:
    port: int
    seen_ns: int


class Switch:
    """Ports, the filtering database and the forwarding rule. ``receive(port, frame)`` is
    the one entry for frames; each port's ``send`` gets what leaves it."""

    def __init__(self, now_ns: Callable[[], int], ageing_ns: int = DEFAULT_AGEING_NS, name: str = "switch") -> None:
        self.now_ns = now_ns
        self.ageing_ns = ageing_ns
        self.name = name
        self.ports: dict[int, Port] = {}
        self.table: dict[tuple[int, bytes], MacEntry] = {}
        self.counters: dict[str, int] = {}
        self._next_port = 1
        self._last_age_ns = 0

    # ---- ports ----

    def add_port(self, name: str, mode: PortMode, send: Callable[[bytes], None]) -> Port:
        port = Port(self._next_port, name, mode, send)
        self._next_port += 1
        self.ports[port.number] = port
        return port

    def remove_port(self, number: int) -> None:
        """The port's peer went away: the port and what it taught the table go."""
        if self.ports.pop(number, None) is None:
            return
        for key in [key for key, entry in self.table.items() if entry.port == number]:
            del self.table[key]

    # ---- frames ----

    def _drop(self, port: Port, why: str) -> None:
        port.count(f"drop_{why}")
        self.counters[f"drop_{why}"] = self.counters.get(f"drop_{why}", 0) + 1

    def classify(self, port: Port, frame: bytes) -> tuple[int, int, bytes] | str:
        """(vlan, pcp_dei bits, untagged frame) of a frame entering ``port``, or why it is dropped."""
        if len(frame) < ETH_HEADER:
            return "runt"
        if len(frame) > MAX_FRAME:
            return "oversize"
        if frame[6] & 1:
            return "group_source"
        (ethertype,) = struct.unpack_from(">H", frame, 12)
        if ethertype != TPID_8021Q:
            if len(frame) > MAX_FRAME - TAG_SIZE:
                return "oversize"
            vlan = port.mode.vlan if port.mode.vlan is not None else port.mode.native
            if vlan is None:
                return "untagged_on_trunk"
            return vlan, 0, frame
        if len(frame) < ETH_HEADER + TAG_SIZE:
            return "bad_tag"
        (tci,) = struct.unpack_from(">H", frame, 14)
        vid, prio = tci & 0xFFF, tci & 0xF000
        if vid == 0xFFF:
            return "bad_tag"
        inner = frame[:12] + frame[16:]
        if vid == 0:  # priority-tagged: the port's own VLAN (802.1Q 6.9.1)
            vlan = port.mode.vlan if port.mode.vlan is not None else port.mode.native
            if vlan is None:
                return "untagged_on_trunk"
            return vlan, prio, inner
        if not port.mode.is_trunk:
            return "tagged_on_access"
        if vid not in port.mode.trunk:
            return "vlan_not_allowed"
        return vid, prio, inner

    def receive(self, number: int, frame: bytes) -> None:
        port = self.ports.get(number)
        if port is None:
            return
        port.count("rx_frames")
        port.count("rx_bytes", len(frame))
        if port.tap is not None:
            port.tap(frame)
        verdict = self.classify(port, frame)
        if isinstance(verdict, str):
            self._drop(port, verdict)
            return
        vlan, prio, inner = verdict
        now = self.now_ns()
        self._age(now)
        self._learn(port, vlan, inner[6:12], now)
        destination = inner[:6]
        entry = None if destination[0] & 1 else self.table.get((vlan, destination))
        if entry is not None and now - entry.seen_ns >= self.ageing_ns:
            entry = None
        if entry is not None:
            if entry.port != number and entry.port in self.ports:
                self._emit(self.ports[entry.port], vlan, prio, inner)
            else:
                self._drop(port, "same_port")
            return
        for other in list(self.ports.values()):
            if other.number != number and vlan in other.mode.vlans():
                self._emit(other, vlan, prio, inner)

    def _emit(self, port: Port, vlan: int, prio: int, inner: bytes) -> None:
        if port.mode.vlan == vlan or (port.mode.is_trunk and port.mode.native == vlan):
            frame = inner
        else:
            frame = inner[:12] + struct.pack(">HH", TPID_8021Q, prio | vlan) + inner[12:]
        port.count("tx_frames")
        port.count("tx_bytes", len(frame))
        if port.tap is not None:
            port.tap(frame)
        port.send(frame)

    def _learn(self, port: Port, vlan: int, source: bytes, now: int) -> None:
        key = (vlan, bytes(source))
        entry = self.table.get(key)
        if entry is not None:
            if entry.port != port.number:  # the station moved
                old = self.ports.get(entry.port)
                if old is not None:
                    old.learned -= 1
                if port.learned >= MAC_PER_PORT_LIMIT:
                    del self.table[key]
                    self._drop_learning(port)
                    return
                entry.port = port.number
                port.learned += 1
            entry.seen_ns = now
            return
        if port.learned >= MAC_PER_PORT_LIMIT or len(self.table) >= MAC_TABLE_LIMIT:
            self._drop_learning(port)
            return
        self.table[key] = MacEntry(port.number, now)
        port.learned += 1

    def _drop_learning(self, port: Port) -> None:
        port.count("learn_refused")
        self.counters["learn_refused"] = self.counters.get("learn_refused", 0) + 1

    def _age(self, now: int) -> None:
        """Forget stations not heard from for ``ageing_ns`` (swept at most every tenth of it)."""
        if now - self._last_age_ns < self.ageing_ns // 10:
            return
        self._last_age_ns = now
        for key, entry in list(self.table.items()):
            if now - entry.seen_ns >= self.ageing_ns:
                del self.table[key]
                port = self.ports.get(entry.port)
                if port is not None:
                    port.learned -= 1
                self.counters["aged"] = self.counters.get("aged", 0) + 1

    # ---- what `vmm switch show` prints ----

    def describe(self) -> dict:
        now = self.now_ns()
        self._age(now)
        vlans: dict[int, list[int]] = {}
        for port in self.ports.values():
            for vid in port.mode.vlans():
                vlans.setdefault(vid, []).append(port.number)
        return {
            "name": self.name,
            "ageing_s": self.ageing_ns / 1e9,
            "ports": [
                {
                    "port": p.number,
                    "name": p.name,
                    "mode": p.mode.describe(),
                    "counters": dict(sorted(p.counters.items())),
                }
                for p in self.ports.values()
            ],
            "vlans": {str(vid): members for vid, members in sorted(vlans.items())},
            "macs": [
                {"vlan": vlan, "mac": format_mac(mac), "port": e.port, "age_s": round((now - e.seen_ns) / 1e9, 3)}
                for (vlan, mac), e in sorted(self.table.items())
                if now - e.seen_ns < self.ageing_ns
            ],
            "counters": dict(sorted(self.counters.items())),
        }


def format_show(info: dict) -> str:
    """The text `vmm switch show` prints."""
    lines = [f"switch {info['name']}: {len(info['ports'])} ports, ageing {info['ageing_s']:g} s"]
    lines.append("ports:")
    for p in info["ports"]:
        c = p["counters"]
        drops = {k[5:]: v for k, v in c.items() if k.startswith("drop_")}
        reasons = ", ".join(f"{k} {v}" for k, v in drops.items())
        dropped = f", dropped {sum(drops.values())} ({reasons})" if drops else ""
        rx = f"rx {c.get('rx_frames', 0)} frames/{c.get('rx_bytes', 0)} B"
        tx = f"tx {c.get('tx_frames', 0)} frames/{c.get('tx_bytes', 0)} B"
        lines.append(f"  {p['port']:>3} {p['name']:<24} {p['mode']:<28} {rx}, {tx}{dropped}")
    lines.append("vlans:")
    for vid, members in info["vlans"].items():
        lines.append(f"  {vid:>4}: ports {', '.join(map(str, members))}")
    lines.append("mac table:")
    if not info["macs"]:
        lines.append("  (empty)")
    for m in info["macs"]:
        lines.append(f"  vlan {m['vlan']:>4}  {m['mac']}  port {m['port']:>3}  age {m['age_s']:g} s")
    if info["counters"]:
        lines.append("counters: " + ", ".join(f"{k} {v}" for k, v in info["counters"].items()))
    return "\n".join(lines)
