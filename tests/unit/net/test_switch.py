"""The switch's forwarding rule (vmm.net.switch): learning per VLAN, flooding within a VLAN,
access and trunk ports, ageing in the switch's own time, and untrusted frames dropped."""

from __future__ import annotations

import random
import struct

import pytest

from vmm.errors import ConfigError
from vmm.net.switch import MAC_PER_PORT_LIMIT, MAC_TABLE_LIMIT, PortMode, Switch, format_show, parse_port_mode

BCAST = b"\xff" * 6


def mac(n: int) -> bytes:
    return bytes((2, 0, 0, 0, 0, n))


def frame(dst: bytes, src: bytes, payload: bytes = b"payload", ethertype: int = 0x0800) -> bytes:
    return dst + src + struct.pack(">H", ethertype) + payload


def tagged(dst: bytes, src: bytes, vid: int, payload: bytes = b"payload", pcp: int = 0) -> bytes:
    return dst + src + struct.pack(">HH", 0x8100, pcp << 13 | vid) + b"\x08\x00" + payload


class Bench:
    def __init__(self, ageing_ns: int = 300 * 10**9) -> None:
        self.now = 0
        self.switch = Switch(lambda: self.now, ageing_ns)
        self.got: dict[str, list[bytes]] = {}
        self.port: dict[str, int] = {}

    def plug(self, name: str, mode: PortMode) -> int:
        self.got[name] = []
        number = self.switch.add_port(name, mode, self.got[name].append).number
        self.port[name] = number
        return number

    def send(self, name: str, data: bytes) -> None:
        self.switch.receive(self.port[name], data)

    def take(self) -> dict[str, list[bytes]]:
        out = {k: v[:] for k, v in self.got.items() if v}
        for v in self.got.values():
            v.clear()
        return out


@pytest.fixture
def bench() -> Bench:
    b = Bench()
    b.plug("a", PortMode.access(10))
    b.plug("b", PortMode.access(10))
    b.plug("c", PortMode.access(20))
    b.plug("t", PortMode.trunk_of([10, 20]))
    return b


def test_broadcast_floods_only_within_the_vlan_and_is_tagged_on_the_trunk(bench: Bench) -> None:
    bench.send("a", frame(BCAST, mac(1)))
    assert bench.take() == {"b": [frame(BCAST, mac(1))], "t": [tagged(BCAST, mac(1), 10)]}
    bench.send("c", frame(BCAST, mac(3)))
    assert bench.take() == {"t": [tagged(BCAST, mac(3), 20)]}


def test_learned_station_gets_unicast_only(bench: Bench) -> None:
    bench.send("b", frame(BCAST, mac(2)))
    bench.take()
    bench.send("a", frame(mac(2), mac(1)))
    assert bench.take() == {"b": [frame(mac(2), mac(1))]}
    # The table is per VLAN: mac 2 is unknown in VLAN 20, so a frame to it floods there.
    bench.send("t", tagged(mac(2), mac(9), 20))
    assert bench.take() == {"c": [frame(mac(2), mac(9))]}


def test_trunk_tagged_frames_reach_their_vlan_untagged_and_keep_priority(bench: Bench) -> None:
    bench.send("t", tagged(BCAST, mac(9), 10, pcp=5))
    assert bench.take() == {"a": [frame(BCAST, mac(9))], "b": [frame(BCAST, mac(9))]}
    bench.plug("t2", PortMode.trunk_of([10]))
    bench.send("t", tagged(BCAST, mac(9), 10, pcp=5))
    assert bench.take()["t2"] == [tagged(BCAST, mac(9), 10, pcp=5)]


def test_native_vlan_is_untagged_on_the_trunk() -> None:
    b = Bench()
    b.plug("a", PortMode.access(1))
    b.plug("t", PortMode.trunk_of([10], native=1))
    b.send("t", frame(BCAST, mac(9)))
    assert b.take() == {"a": [frame(BCAST, mac(9))]}
    b.send("a", frame(BCAST, mac(1)))
    assert b.take() == {"t": [frame(BCAST, mac(1))]}
    b.send("t", tagged(BCAST, mac(9), 0))  # priority-tagged: the native VLAN
    assert b.take() == {"a": [frame(BCAST, mac(9))]}


@pytest.mark.parametrize(
    ("port", "data", "why"),
    [
        ("a", b"\x01\x02", "runt"),
        ("a", frame(BCAST, mac(1))[:13], "runt"),
        ("a", frame(BCAST, BCAST), "group_source"),
        ("a", tagged(BCAST, mac(1), 10), "tagged_on_access"),
        ("t", tagged(BCAST, mac(1), 30), "vlan_not_allowed"),
        ("t", tagged(BCAST, mac(1), 4095), "bad_tag"),
        ("t", BCAST + mac(1) + b"\x81\x00\x00", "bad_tag"),
        ("t", frame(BCAST, mac(1)), "untagged_on_trunk"),
        ("a", frame(BCAST, mac(1), bytes(70000)), "oversize"),
    ],
)
def test_malformed_frames_are_dropped_and_counted(bench: Bench, port: str, data: bytes, why: str) -> None:
    bench.send(port, data)
    assert bench.take() == {}
    assert bench.switch.ports[bench.port[port]].counters[f"drop_{why}"] == 1
    assert bench.switch.counters[f"drop_{why}"] == 1
    assert f"{why} 1" in format_show(bench.switch.describe())


def test_ageing_forgets_a_silent_station_in_switch_time() -> None:
    b = Bench(ageing_ns=10 * 10**9)
    b.plug("a", PortMode.access(1))
    b.plug("b", PortMode.access(1))
    b.plug("c", PortMode.access(1))
    b.send("b", frame(BCAST, mac(2)))
    b.take()
    b.now = 9 * 10**9
    b.send("a", frame(mac(2), mac(1)))
    assert list(b.take()) == ["b"]
    b.now = 12 * 10**9  # b silent for 12 s: forgotten, the frame floods again
    b.send("a", frame(mac(2), mac(1)))
    assert sorted(b.take()) == ["b", "c"]
    assert b.switch.counters["aged"] >= 1


def test_a_station_that_moves_is_relearned_and_a_removed_port_forgets() -> None:
    b = Bench()
    for name in "abc":
        b.plug(name, PortMode.access(1))
    b.send("b", frame(BCAST, mac(7)))
    b.send("c", frame(BCAST, mac(7)))  # mac 7 moved to port c
    b.take()
    b.send("a", frame(mac(7), mac(1)))
    assert list(b.take()) == ["c"]
    b.switch.remove_port(b.port["c"])
    assert all(entry.port != b.port["c"] for entry in b.switch.table.values())
    b.send("a", frame(mac(7), mac(1)))
    assert list(b.take()) == ["b"]


def test_a_source_address_flood_is_bounded_and_other_stations_stay_served() -> None:
    b = Bench()
    b.plug("a", PortMode.access(1))
    b.plug("b", PortMode.access(1))
    b.plug("hostile", PortMode.access(1))
    b.send("b", frame(BCAST, mac(2)))
    b.take()
    for n in range(MAC_PER_PORT_LIMIT * 3):
        b.send("hostile", frame(BCAST, b"\x06" + n.to_bytes(5, "big")))
    assert b.switch.ports[b.port["hostile"]].learned == MAC_PER_PORT_LIMIT
    assert len(b.switch.table) <= MAC_TABLE_LIMIT
    b.take()
    b.send("a", frame(mac(2), mac(1)))
    assert list(b.take()) == ["b"]  # b's entry survived the flood


def test_random_bytes_never_raise() -> None:
    rng = random.Random(17)
    b = Bench()
    b.plug("a", PortMode.access(1))
    b.plug("t", PortMode.trunk_of([1, 2, 3], native=4))
    for _ in range(5000):
        data = bytes(rng.getrandbits(8) for _ in range(rng.choice((0, 5, 14, 17, 18, 60, 200))))
        if rng.random() < 0.5 and len(data) >= 16:
            data = data[:12] + b"\x81\x00" + data[14:]
        b.send(rng.choice("at"), data)
    info = b.switch.describe()
    assert sum(p["counters"]["rx_frames"] for p in info["ports"]) == 5000


@pytest.mark.parametrize(
    ("options", "described"),
    [
        ({}, "access vlan 1"),
        ({"vlan": "10"}, "access vlan 10"),
        ({"trunk": "10:20"}, "trunk 10,20 no native"),
        ({"trunk": "10,20", "native": "1"}, "trunk 10,20 native 1"),
    ],
)
def test_port_modes_parse(options: dict, described: str) -> None:
    assert parse_port_mode(options, "x").describe() == described


@pytest.mark.parametrize(
    "options",
    [{"vlan": "0"}, {"vlan": "4095"}, {"vlan": "x"}, {"trunk": "10", "vlan": "2"}, {"native": "3"}, {"trunk": ""}],
)
def test_bad_port_modes_are_one_line_errors(options: dict) -> None:
    with pytest.raises(ConfigError, match="^x: "):
        parse_port_mode(options, "x")
