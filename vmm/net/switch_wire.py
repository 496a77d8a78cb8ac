"""The switch's wire: QEMU's stream framing, plus vmm's control records.

QEMU 7.2's ``-netdev stream`` and ``-netdev socket`` (net/stream.c, net/socket.c,
net_fill_rstate in net/net.c) send each frame as a 4-byte big-endian length followed by the
frame, over a stream socket; a QEMU VM therefore plugs into the switch with
``-netdev stream,id=n0,server=off,addr.type=unix,addr.path=PATH``.

vmm's own peers (a NIC's ``switch=`` backend, `vmm switch show`) also send control records:
a length word with the top bit set (a length QEMU never sends: its frames are at most
NET_BUFSIZE, 69632 bytes), then that many bytes of JSON. The first record of a vmm NIC is
``{"hello": {"name": ..., "mode": {...}}}`` and the switch answers ``{"port": N}`` or
``{"error": ...}``; ``{"show": true}`` gets ``{"show": {...}}``. A peer whose first record
is a frame (QEMU) gets the switch's default port mode. The lengths are checked before any
buffering: a length past ``MAX_RECORD`` means the stream cannot be trusted any more, and
the connection is closed (counted).
"""

from __future__ import annotations

import json
import struct

CONTROL = 0x8000_0000
MAX_RECORD = 69632  # QEMU's NET_BUFSIZE: no QEMU peer sends more
MAX_CONTROL = 64 * 1024


class WireError(Exception):
    """The peer broke the framing; the connection cannot go on."""


def frame_record(frame: bytes) -> bytes:
    return struct.pack(">I", len(frame)) + frame


def control_record(message: dict) -> bytes:
    data = json.dumps(message, separators=(",", ":")).encode()
    return struct.pack(">I", CONTROL | len(data)) + data


class RecordReader:
    """Bytes in, records out: ("frame", bytes) or ("control", dict)."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[str, object]]:
        self.buffer += data
        records: list[tuple[str, object]] = []
        while len(self.buffer) >= 4:
            (word,) = struct.unpack_from(">I", self.buffer)
            control = bool(word & CONTROL)
            length = word & ~CONTROL
            if length > (MAX_CONTROL if control else MAX_RECORD):
                raise WireError(f"record of {length} bytes announced (at most {MAX_RECORD})")
            if len(self.buffer) < 4 + length:
                break
            body = bytes(self.buffer[4 : 4 + length])
            del self.buffer[: 4 + length]
            if not control:
                records.append(("frame", body))
                continue
            try:
                message = json.loads(body)
            except (UnicodeDecodeError, ValueError):
                raise WireError("control record is not JSON") from None
            if not isinstance(message, dict):
                raise WireError("control record is not a JSON object")
            records.append(("control", message))
        return records
