"""Ethernet/ARP/IPv4/UDP/TCP/ICMP/DHCP frames built and read by hand, for driving a NIC
backend without a guest (the user-net tests)."""

from __future__ import annotations

import ipaddress
import struct

BROADCAST = b"\xff" * 6
GUEST_MAC = bytes.fromhex("525400123456")
ETH_IP, ETH_ARP = 0x0800, 0x0806


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ip4(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def ether(dst: bytes, src: bytes, kind: int, payload: bytes) -> bytes:
    return dst + src + struct.pack("!H", kind) + payload


def arp_request(sender_ip: str, target_ip: str, mac: bytes = GUEST_MAC) -> bytes:
    body = struct.pack("!HHBBH", 1, ETH_IP, 6, 4, 1) + mac + ip4(sender_ip) + bytes(6) + ip4(target_ip)
    return ether(BROADCAST, mac, ETH_ARP, body)


def ipv4(src: str, dst: str, proto: int, payload: bytes, ident: int = 1) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0, 64, proto, 0, ip4(src), ip4(dst))
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def udp(src: str, dst: str, sport: int, dport: int, data: bytes) -> bytes:
    length = 8 + len(data)
    pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 17, length)
    segment = struct.pack("!HHHH", sport, dport, length, 0) + data
    csum = checksum(pseudo + segment) or 0xFFFF
    return ipv4(src, dst, 17, segment[:6] + struct.pack("!H", csum) + segment[8:])


def tcp_syn(src: str, dst: str, sport: int, dport: int, seq: int = 1000) -> bytes:
    segment = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 65535, 0, 0)
    pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 6, len(segment))
    csum = checksum(pseudo + segment)
    return ipv4(src, dst, 6, segment[:16] + struct.pack("!H", csum) + segment[18:])


def icmp_echo(src: str, dst: str, ident: int, seq: int, data: bytes = b"vmm-ping") -> bytes:
    body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + data
    body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
    return ipv4(src, dst, 1, body)


def dhcp(kind: int, xid: int, mac: bytes = GUEST_MAC, requested: str | None = None, server: str | None = None) -> bytes:
    """A DHCP DISCOVER (1) or REQUEST (3) from 0.0.0.0, broadcast, as udhcpc sends it."""
    bootp = struct.pack("!BBBBIHH4s4s4s4s", 1, 1, 6, 0, xid, 0, 0x8000, bytes(4), bytes(4), bytes(4), bytes(4))
    bootp += mac + bytes(10) + bytes(64) + bytes(128) + b"\x63\x82\x53\x63"
    options = bytes([53, 1, kind])
    if requested:
        options += bytes([50, 4]) + ip4(requested)
    if server:
        options += bytes([54, 4]) + ip4(server)
    options += bytes([55, 3, 1, 3, 6, 255])
    return ether(BROADCAST, mac, ETH_IP, udp("0.0.0.0", "255.255.255.255", 68, 67, bootp + options))


def parse(frame: bytes) -> dict:
    """The fields the tests look at, from an Ethernet frame."""
    out: dict = {"dst": frame[:6], "src": frame[6:12], "type": struct.unpack("!H", frame[12:14])[0]}
    body = frame[14:]
    if out["type"] == ETH_ARP:
        out["arp_op"] = struct.unpack("!H", body[6:8])[0]
        out["arp_sender_mac"], out["arp_sender_ip"] = body[8:14], str(ipaddress.IPv4Address(body[14:18]))
        out["arp_target_ip"] = str(ipaddress.IPv4Address(body[24:28]))
        return out
    if out["type"] != ETH_IP:
        return out
    ihl = (body[0] & 15) * 4
    out["proto"] = body[9]
    out["ip_src"], out["ip_dst"] = str(ipaddress.IPv4Address(body[12:16])), str(ipaddress.IPv4Address(body[16:20]))
    out["ip_checksum_ok"] = checksum(body[:ihl]) == 0
    payload = body[ihl : struct.unpack("!H", body[2:4])[0]]
    if out["proto"] == 1:
        out["icmp_type"], out["icmp_code"] = payload[0], payload[1]
        out["icmp_id"], out["icmp_seq"] = struct.unpack("!HH", payload[4:8])
        out["icmp_data"] = payload[8:]
    elif out["proto"] == 17:
        out["sport"], out["dport"] = struct.unpack("!HH", payload[:4])
        out["udp_data"] = payload[8:]
    elif out["proto"] == 6:
        out["sport"], out["dport"], out["seq"], out["ack"] = struct.unpack("!HHII", payload[:12])
        out["tcp_flags"] = payload[13]
    return out


def dhcp_reply(frame: bytes) -> dict:
    """yiaddr and the options of a DHCP reply frame."""
    data = parse(frame)["udp_data"]
    reply = {"op": data[0], "yiaddr": str(ipaddress.IPv4Address(data[16:20])), "chaddr": data[28:34]}
    at = 240
    while at < len(data) and data[at] != 255:
        if data[at] == 0:
            at += 1
            continue
        code, length = data[at], data[at + 1]
        reply[code] = data[at + 2 : at + 2 + length]
        at += 2 + length
    return reply
