"""`--nic user` on libslirp, driven frame by frame without a guest: ARP and DHCP answers
(QEMU's addresses and the configurable ones), ICMP echo of the gateway, hostfwd (port 0
bound and reported, a port in use refused in one line), a guest TCP connection reaching a
host socket on 127.0.0.1, the same answers on every run, and hostile frames."""

from __future__ import annotations

import random
import select
import socket

import pytest

from tests.unit.net import frames
from tests.unit.net.frames import GUEST_MAC
from vmm.config import NicConfig
from vmm.devices.pci.options import parse_nic
from vmm.errors import ConfigError
from vmm.net.backend import open_backend
from vmm.net.slirp import SlirpBackend
from vmm.net.slirp_options import parse_user_options


class FakeClock:
    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        return self.ns


def user_net(options: dict[str, str] | None = None) -> tuple[SlirpBackend, list[bytes], FakeClock]:
    clock = FakeClock()
    backend = open_backend("user", options or {}, "test/ethernet0", clock)
    received: list[bytes] = []
    backend.attach(received.append)
    return backend, received, clock


def lease(backend: SlirpBackend, received: list[bytes]) -> dict:
    """DISCOVER, then REQUEST of what was offered; the ACK's fields."""
    backend.send(frames.dhcp(1, 0x1234))
    offer = frames.dhcp_reply(received.pop())
    assert offer[53] == bytes([2])  # OFFER
    backend.send(frames.dhcp(3, 0x1234, requested=offer["yiaddr"], server=dotted(offer[54])))
    ack = frames.dhcp_reply(received.pop())
    assert ack[53] == bytes([5])  # ACK
    return ack


def dotted(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


def test_dhcp_gives_qemus_addresses() -> None:
    backend, received, _ = user_net()
    try:
        ack = lease(backend, received)
        assert ack["yiaddr"] == "10.0.2.15" and ack["chaddr"] == GUEST_MAC
        assert dotted(ack[1]) == "255.255.255.0"
        assert dotted(ack[3]) == "10.0.2.2"  # router
        assert dotted(ack[6]) == "10.0.2.3"  # DNS
        assert dotted(ack[54]) == "10.0.2.2"  # the DHCP server
    finally:
        backend.close()


def test_net_host_dns_and_dhcpstart_are_configurable() -> None:
    backend, received, _ = user_net({"net": "192.168.76.0/24", "host": "192.168.76.1", "dns": "192.168.76.53",
                                     "dhcpstart": "192.168.76.100"})  # fmt: skip
    try:
        ack = lease(backend, received)
        assert ack["yiaddr"] == "192.168.76.100"
        assert (dotted(ack[3]), dotted(ack[6])) == ("192.168.76.1", "192.168.76.53")
    finally:
        backend.close()


def test_net_alone_moves_every_default_as_qemu_does() -> None:
    options = parse_user_options({"net": "172.30.0.0/16"})
    assert (str(options.host), str(options.dns), str(options.dhcp_start)) == ("172.30.0.2", "172.30.0.3",
                                                                              "172.30.0.15")  # fmt: skip


def test_gateway_answers_arp_and_ping() -> None:
    backend, received, _ = user_net()
    try:
        lease(backend, received)
        backend.send(frames.arp_request("10.0.2.15", "10.0.2.2"))
        arp = frames.parse(received.pop())
        assert arp["arp_op"] == 2 and arp["arp_sender_ip"] == "10.0.2.2" and arp["dst"] == GUEST_MAC
        gateway_mac = arp["arp_sender_mac"]
        for seq in range(3):
            backend.send(frames.ether(gateway_mac, GUEST_MAC, frames.ETH_IP,
                                      frames.icmp_echo("10.0.2.15", "10.0.2.2", 77, seq)))  # fmt: skip
            reply = frames.parse(received.pop())
            assert (reply["ip_src"], reply["ip_dst"], reply["icmp_type"]) == ("10.0.2.2", "10.0.2.15", 0)
            assert (reply["icmp_id"], reply["icmp_seq"], reply["icmp_data"]) == (77, seq, b"vmm-ping")
            assert reply["ip_checksum_ok"]
        assert backend.fds() == []  # nothing of this touched a host socket
    finally:
        backend.close()


def test_the_same_exchange_gives_the_same_frames_every_run() -> None:
    def run() -> list[bytes]:
        backend, received, clock = user_net()
        try:
            for step in range(3):
                clock.ns = step * 1_000_000
                backend.send(frames.dhcp(1, 0x99))
                backend.send(frames.arp_request("10.0.2.15", "10.0.2.2"))
                backend.poll()
            return received
        finally:
            backend.close()

    assert run() == run()


def test_hostfwd_port_zero_binds_127_0_0_1_and_reports_the_port() -> None:
    backend, received, _ = user_net({"hostfwd": "tcp::0-:80;udp::0-10.0.2.15:53"})
    try:
        (proto, addr, port, guest, guest_port), udp_rule = backend.forwards
        assert (proto, addr, guest, guest_port) == ("tcp", "127.0.0.1", "10.0.2.15", 80) and port > 0
        assert udp_rule[0] == "udp" and udp_rule[2] > 0
        assert backend.notes[0] == f"test/ethernet0: hostfwd tcp 127.0.0.1:{port} -> 10.0.2.15:80"
        lease(backend, received)  # slirp learns the guest's MAC
        client = socket.create_connection(("127.0.0.1", port), timeout=30)
        try:
            # The connection is accepted on the host and becomes a SYN to the guest's port 80.
            select.select(backend.fds(), [], [], 30)  # the listener is readable (a bound, not a timing)
            backend.poll()
            syns = [f for f in map(frames.parse, received) if f.get("proto") == 6]
            assert syns, backend.connection_info()
            syn = syns[0]
            assert (syn["ip_dst"], syn["dport"], syn["tcp_flags"] & 0x02) == ("10.0.2.15", 80, 0x02)
        finally:
            client.close()
    finally:
        backend.close()


def test_hostfwd_on_a_port_in_use_is_one_clear_error() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        with pytest.raises(ConfigError, match=f"hostfwd=tcp:127.0.0.1:{port}-10.0.2.15:22: cannot listen on "
                                              f"127.0.0.1:{port}: the host port is in use"):  # fmt: skip
            user_net({"hostfwd": f"tcp::{port}-:22"})
    finally:
        holder.close()


def test_a_guest_connection_to_the_gateway_reaches_a_host_socket_on_loopback() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(30)
    port = server.getsockname()[1]
    backend, received, _ = user_net()
    try:
        lease(backend, received)
        backend.send(frames.arp_request("10.0.2.15", "10.0.2.2"))
        gateway_mac = frames.parse(received.pop())["arp_sender_mac"]
        backend.send(frames.ether(gateway_mac, GUEST_MAC, frames.ETH_IP,
                                  frames.tcp_syn("10.0.2.15", "10.0.2.2", 40000, port)))  # fmt: skip
        connection, peer = server.accept()  # slirp connected from the host's loopback
        connection.close()
        assert peer[0] == "127.0.0.1"
        assert len(backend.fds()) == 1
    finally:
        backend.close()
        server.close()


def test_restrict_keeps_the_guest_inside() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    port = server.getsockname()[1]
    backend, received, _ = user_net({"restrict": "on"})
    try:
        lease(backend, received)
        backend.send(frames.arp_request("10.0.2.15", "10.0.2.2"))
        gateway_mac = frames.parse(received.pop())["arp_sender_mac"]
        backend.send(frames.ether(gateway_mac, GUEST_MAC, frames.ETH_IP,
                                  frames.tcp_syn("10.0.2.15", "10.0.2.2", 40000, port)))  # fmt: skip
        backend.poll()
        assert backend.fds() == []
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        backend.close()
        server.close()


def test_hostile_frames_leave_the_stack_up() -> None:
    backend, received, clock = user_net()
    rng = random.Random(17)
    try:
        lease(backend, received)
        templates = [frames.dhcp(1, 5), frames.arp_request("10.0.2.15", "10.0.2.2"),
                     frames.ether(b"\x52\x55\x0a\x00\x02\x02", GUEST_MAC, frames.ETH_IP,
                                  frames.icmp_echo("10.0.2.15", "10.0.2.2", 1, 1))]  # fmt: skip
        for case in range(3000):
            frame = bytearray(rng.choice(templates))
            for _ in range(rng.randrange(1, 8)):
                frame[rng.randrange(len(frame))] = rng.randrange(256)
            if case % 7 == 0:
                frame = frame[: rng.randrange(len(frame) + 1)]
            if case % 11 == 0:
                frame += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2000)))
            backend.send(bytes(frame))
            clock.ns += 1_000_000
            backend.poll()
        dropped = backend.stats["dropped"]
        backend.send(b"")  # runt: dropped before libslirp
        backend.send(bytes(70000))  # larger than any frame: dropped
        assert backend.stats["dropped"] == dropped + 2
        received.clear()
        assert lease(backend, received)["yiaddr"] == "10.0.2.15"  # still serving
    finally:
        backend.close()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("user,hostfwd=tcp:80-:80", "expected [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT"),
        ("user,hostfwd=tcp::70000-:80", "ports run 0-65535"),
        ("user,hostfwd=tcp::8080-:0", "ports run 0-65535"),
        ("user,net=10.0.2.0/30", "at least 16 addresses"),
        ("user,net=banana", "not an IPv4 network"),
        ("user,host=10.0.3.2", "host 10.0.3.2 is not a host address of net 10.0.2.0/24"),
        ("user,dns=10.0.2.2", "dns 10.0.2.2 is the host address"),
        ("user,restrict=maybe", "say on or off"),
        ("user,vlan=3", "bad option 'vlan=3'"),
    ],
)
def test_bad_user_options_are_one_line_errors(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("|", r"\|")):
        parse_nic(spec, "ethernet0")


def test_parse_nic_keeps_hostfwd_rules_in_order() -> None:
    nic = parse_nic("user,hostfwd=tcp::0-:80,mac=52:54:00:00:00:01,hostfwd=udp:127.0.0.2:5353-:53", "ethernet0")
    assert nic == NicConfig("ethernet0", "user", "52:54:00:00:00:01", None,
                            {"hostfwd": "tcp::0-:80;udp:127.0.0.2:5353-:53"})  # fmt: skip
    rules = [str(rule) for rule in parse_user_options(nic.options).forwards]
    assert rules == ["tcp:127.0.0.1:0-10.0.2.15:80", "udp:127.0.0.2:5353-10.0.2.15:53"]
