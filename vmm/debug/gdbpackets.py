"""The packet layer of gdb's remote serial protocol (GDB manual, E.1 "Overview"):
framing, checksums, escapes and run-length encoding, and the checks every field gets."""

from __future__ import annotations

import re

MAX_PACKET = 32 << 20  # a longer packet body is dropped (answered "-")
BAD_PACKET = object()


def frame(body: str) -> bytes:
    """``$body#cc`` with ``#``, ``$``, ``}`` and ``*`` escaped (E.1 "Overview")."""
    data = body.encode("latin-1")
    if any(c in data for c in b"#$}*"):
        data = re.sub(rb"[#$}*]", lambda m: bytes((0x7D, m.group()[0] ^ 0x20)), data)
    return b"$" + data + b"#" + f"{sum(data) & 0xFF:02x}".encode()


def _unescape(raw: bytes) -> bytes:
    """Undo ``}`` escapes and ``X*n`` run-length encoding (gdb's manual, E.1)."""
    if b"}" not in raw and b"*" not in raw:
        return raw
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == 0x7D and i + 1 < n:
            out.append(raw[i + 1] ^ 0x20)
            i += 2
        elif c == 0x2A and out and i + 1 < n:  # '*': repeat the previous byte (count - 29) times
            out += bytes((out[-1],)) * max(0, raw[i + 1] - 29)
            i += 2
        else:
            out.append(c)
            i += 1
    return bytes(out)


class PacketReader:
    """The packet layer of the remote protocol, bytes in, packets out; no socket here.

    Buffering is linear: bytes are appended once and scanned from where the last look
    stopped, so a 16 MiB packet costs the same per byte as a small one. Acks (``+``/``-``)
    from gdb and noise between packets are skipped; ``\x03`` outside a packet is an
    interrupt; a packet whose checksum is wrong gives ``BAD_PACKET``.
    """

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.scan = 0  # where to look for '#' next, inside a packet being received
        self.interrupts = 0

    def feed(self, data: bytes) -> None:
        self.buffer += data

    def take_interrupt(self) -> bool:
        self._skip_noise()
        if self.interrupts:
            self.interrupts -= 1
            return True
        return False

    def _skip_noise(self) -> None:
        """Drop what comes before the next '$', counting Ctrl-C bytes among it."""
        start = self.buffer.find(b"$")
        noise = self.buffer if start < 0 else self.buffer[:start]
        if noise:
            self.interrupts += noise.count(3)
            del self.buffer[: len(noise)]
            self.scan = 0

    def events(self):
        """Yield "\x03" for each interrupt, then each complete packet body (str) or BAD_PACKET."""
        while True:
            self._skip_noise()
            while self.interrupts:
                self.interrupts -= 1
                yield "\x03"
            if not self.buffer:
                return
            end = self.buffer.find(b"#", max(1, self.scan))
            if end < 0:
                self.scan = len(self.buffer)
                if len(self.buffer) > MAX_PACKET:
                    self.buffer.clear()
                    self.scan = 0
                    yield BAD_PACKET
                return
            if len(self.buffer) < end + 3:
                self.scan = end
                return
            raw = bytes(self.buffer[1:end])
            checksum = bytes(self.buffer[end + 1 : end + 3])
            del self.buffer[: end + 3]
            self.scan = 0
            try:
                good = int(checksum, 16) == sum(raw) & 0xFF
            except ValueError:
                good = False
            yield _unescape(raw).decode("latin-1") if good else BAD_PACKET


class BadPacket(ValueError):
    """A packet gdb's protocol does not allow (answered with an error, never a traceback)."""


def parse_hex(text: str, what: str) -> int:
    try:
        value = int(text, 16)
    except ValueError:
        raise BadPacket(f"{what}: {text!r} is not hex") from None
    if value < 0 or value >= 1 << 64:
        raise BadPacket(f"{what}: {text!r} is out of range")
    return value


def fields(text: str, sep: str, count: int, what: str) -> list[str]:
    parts = text.split(sep)
    if len(parts) < count:
        raise BadPacket(f"{what}: expected {count} fields")
    return parts
