"""pcap capture files (the classic libpcap format, as tcpdump and Wireshark read it).

Source: the libpcap file format (draft-ietf-opsawg-pcap): a 24-byte global header (magic
0xA1B23C4D for nanosecond timestamps, version 2.4, snaplen, LINKTYPE_ETHERNET 1), then per
packet a 16-byte record header (seconds, nanoseconds, captured length, original length) and
the bytes. Frames are written as they were on the wire, 802.1Q tags included. Timestamps
come from the ``now_ns`` the writer is given: virtual time for a NIC and in `vmm lab` (so a
deterministic run gives the same file byte for byte), host time for `vmm switch`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

from vmm.errors import ConfigError

LINKTYPE_ETHERNET = 1
PCAP_MAGIC_NS = 0xA1B23C4D
SNAPLEN = 65535


class PcapWriter:
    """Appends frames to a new pcap file; each record is flushed so a reader sees it at once."""

    def __init__(self, path: Path, now_ns: Callable[[], int]) -> None:
        self.path = Path(path)
        self.now_ns = now_ns
        self.frames = 0
        try:
            self.file = open(self.path, "wb")  # noqa: SIM115 - kept open for the run
        except OSError as exc:
            raise ConfigError(f"{path}: cannot write the packet capture: {exc.strerror}") from None
        self.file.write(struct.pack("<IHHiIII", PCAP_MAGIC_NS, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))
        self.file.flush()

    def write(self, frame: bytes) -> None:
        if self.file.closed:
            return
        seconds, nanoseconds = divmod(max(0, self.now_ns()), 1_000_000_000)
        captured = frame[:SNAPLEN]
        self.file.write(struct.pack("<IIII", seconds, nanoseconds, len(captured), len(frame)) + captured)
        self.file.flush()
        self.frames += 1

    def close(self) -> None:
        self.file.close()


def read_pcap(data: bytes) -> list[tuple[int, bytes]]:
    """(timestamp ns, frame) of each record of a file PcapWriter wrote (for tests and tools)."""
    magic, _major, _minor, _zone, _sig, _snaplen, linktype = struct.unpack_from("<IHHiIII", data)
    if magic != PCAP_MAGIC_NS or linktype != LINKTYPE_ETHERNET:
        raise ValueError("not a nanosecond Ethernet pcap file")
    records, at = [], 24
    while at + 16 <= len(data):
        seconds, nanoseconds, captured, _original = struct.unpack_from("<IIII", data, at)
        records.append((seconds * 1_000_000_000 + nanoseconds, data[at + 16 : at + 16 + captured]))
        at += 16 + captured
    return records
