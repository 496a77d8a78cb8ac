"""A switch port as an uplink to user-mode NAT (`vmm switch PATH --uplink user`): stations
on the uplink's VLAN get DHCP leases and ping the virtual gateway through the switch;
stations on another VLAN do not reach it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.net import frames
from tests.unit.net.test_switch_socket import GUARD, recv
from vmm.net.switch import PortMode
from vmm.net.switch_client import SwitchBackend

MAC_A = bytes.fromhex("525400000a01")
MAC_B = bytes.fromhex("525400000a02")


@pytest.fixture
def uplinked(tmp_path: Path):
    path = tmp_path / "sw.sock"
    proc = subprocess.Popen([sys.executable, "-m", "vmm", "switch", str(path), "--uplink", "user,vlan=10"],
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    lines = [proc.stderr.readline() for _ in range(2)]
    assert "uplink-user (access vlan 10)" in lines[0] and "serving" in lines[1]
    yield path
    proc.terminate()
    proc.wait(GUARD)


def test_stations_on_the_uplink_vlan_get_leases_and_ping_the_gateway(uplinked: Path) -> None:
    a = SwitchBackend(uplinked, PortMode.access(10), "a")
    a.send(frames.dhcp(1, 0x1717, mac=MAC_A))
    offer = frames.dhcp_reply(recv(a))
    assert offer["op"] == 2 and offer["yiaddr"] == "10.0.2.15" and offer["chaddr"] == MAC_A
    a.send(frames.ether(frames.BROADCAST, MAC_A, frames.ETH_ARP, frames.arp_request("10.0.2.15", "10.0.2.2",
                                                                                    MAC_A)[14:]))  # fmt: skip
    arp = frames.parse(recv(a))
    assert arp["arp_op"] == 2 and arp["arp_sender_ip"] == "10.0.2.2"
    a.send(frames.ether(arp["arp_sender_mac"], MAC_A, frames.ETH_IP, frames.icmp_echo("10.0.2.15", "10.0.2.2", 7, 1)))
    reply = frames.parse(recv(a))
    assert reply["icmp_type"] == 0 and reply["ip_src"] == "10.0.2.2" and reply["icmp_seq"] == 1
    # A trunk carrying VLAN 10 tagged reaches the same NAT with a tagged frame.
    t = SwitchBackend(uplinked, PortMode.trunk_of([10]), "t")
    discover = frames.dhcp(1, 0x2323, mac=MAC_B)
    t.send(discover[:12] + b"\x81\x00\x00\x0a" + discover[12:])
    tagged = recv(t)
    while tagged[16:] and frames.parse(tagged[:12] + tagged[16:]).get("dport") != 68:
        tagged = recv(t)  # skip a's traffic flooded to the trunk
    assert tagged[12:16] == b"\x81\x00\x00\x0a"
    assert frames.dhcp_reply(tagged[:12] + tagged[16:])["chaddr"] == MAC_B


def test_another_vlan_does_not_reach_the_uplink(uplinked: Path) -> None:
    other = SwitchBackend(uplinked, PortMode.access(20), "other")
    witness = SwitchBackend(uplinked, PortMode.access(20), "witness")
    other.send(frames.dhcp(1, 0x4242, mac=MAC_A))
    # The DISCOVER floods to VLAN 20 only: the witness sees it, and nothing answers.
    assert frames.parse(recv(witness))["dport"] == 67
    shown = subprocess.run([sys.executable, "-m", "vmm", "switch", "show", str(uplinked)], capture_output=True,
                           text=True, timeout=GUARD).stdout  # fmt: skip
    uplink_line = next(line for line in shown.splitlines() if "uplink-user" in line)
    assert "rx 0 frames/0 B, tx 0 frames" in uplink_line
