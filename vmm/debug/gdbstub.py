"""A GDB remote serial protocol stub (`vmm run --gdb [HOST:]PORT`).

Packets (GDB manual, appendix E "Remote Protocol"): ``?``, ``g``/``p`` (registers),
``m``/``M`` (memory at virtual addresses: the page tables are walked from CR3 in
vmm.cpu.paging), ``s``, ``c`` (interrupted by Ctrl-C, 0x03), ``Z0``/``Z1`` and
``z0``/``z1`` (breakpoints: a Unicorn code hook each), ``qXfer:features:read`` (the
target description), ``qRcmd`` (``monitor CMD`` runs vmm's debugger commands), ``D``
and ``k``. Watchpoints ``Z2`` (write), ``Z3`` (read) and ``Z4`` (access) are vmm's
page-protection watchpoints (vmm.cpu.unicorn_debug); a hit answers ``T05watch:ADDR;``
(``rwatch``, ``awatch``) after the accessing instruction ran, as gdb expects of hardware
watchpoints.

Without ``--wait`` the guest runs while the stub listens; gdb connecting stops it where
it is. With ``--wait`` it stays at reset until gdb connects.

The target description is chosen when gdb connects: i386 while the CPU runs 16- or
32-bit code, i386:x86-64 once it runs 64-bit code. The register layout then stays the
one gdb was told (QEMU's stub changes it under gdb's feet and gdb fails with "Remote 'g'
packet reply is too long"): an i386 session keeps seeing the low 32 bits.
"""

from __future__ import annotations

import re
import select
import socket
import sys
import time

from vmm import listen
from vmm.cpu.paging import PageFault, read_linear, write_linear
from vmm.debug.commands import Commands
from vmm.debug.engine import Debugger
from vmm.errors import VmmError

RECV_SIZE = 1 << 16
MAX_PACKET = 32 << 20  # a longer packet body is dropped (answered "-")
MAX_MEMORY_READ = 0x10000  # bytes per `m` reply (gdb asks for less: PacketSize)
MAX_WATCH_LENGTH = 1 << 20
MAX_MONITOR_COUNT = 10_000_000  # instructions one `monitor step/continue N` may run
SIGTRAP = 5
SIGINT = 2
CONTINUE_CHUNK = 2_000_000  # instructions between looks for Ctrl-C
SEGMENTS = ("cs", "ss", "ds", "es", "fs", "gs")
WATCH_TYPES = {"2": "w", "3": "r", "4": "rw"}  # Z2 write, Z3 read, Z4 access
STOP_NAMES = {"w": "watch", "r": "rwatch", "rw": "awatch"}
X87 = ("fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop")


def _xml(arch: str, gprs: list[str], width: int) -> str:
    regs = []
    for name in gprs:
        kind = "data_ptr" if name in ("esp", "ebp", "rsp", "rbp") else "int"
        regs.append(f'<reg name="{name}" bitsize="{width}" type="{kind}"/>')
    regs.append(f'<reg name="{"rip" if width == 64 else "eip"}" bitsize="{width}" type="code_ptr"/>')
    regs.append('<reg name="eflags" bitsize="32" type="int"/>')
    regs += [f'<reg name="{s}" bitsize="32" type="int32"/>' for s in SEGMENTS]
    regs += [f'<reg name="st{i}" bitsize="80" type="i387_ext"/>' for i in range(8)]
    regs += [f'<reg name="{r}" bitsize="32" type="int" group="float"/>' for r in X87]
    return ('<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target version="1.0">'
            f'<architecture>{arch}</architecture><feature name="org.gnu.gdb.i386.core">'
            + "".join(regs) + "</feature></target>")  # fmt: skip


GPR32 = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"]
GPR64 = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp"] + [f"r{i}" for i in range(8, 16)]


def parse_endpoint(spec: str) -> tuple[str, int]:
    return listen.parse_endpoint(spec, "--gdb")


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


def _hex(text: str, what: str) -> int:
    try:
        value = int(text, 16)
    except ValueError:
        raise BadPacket(f"{what}: {text!r} is not hex") from None
    if value < 0 or value >= 1 << 64:
        raise BadPacket(f"{what}: {text!r} is out of range")
    return value


def _fields(text: str, sep: str, count: int, what: str) -> list[str]:
    parts = text.split(sep)
    if len(parts) < count:
        raise BadPacket(f"{what}: expected {count} fields")
    return parts


class GdbStub:
    def __init__(self, machine, endpoint: str) -> None:
        host, port = parse_endpoint(endpoint)
        self.listener = listen.listen_tcp(host, port, f"--gdb: cannot listen on {host}:{port}")
        self.address = self.listener.getsockname()[:2]  # the port the kernel chose for port 0
        self.machine = machine
        self.dbg = Debugger(machine, checkpoint_every=None)
        self.commands = Commands(self.dbg, max_count=MAX_MONITOR_COUNT)
        self.conn: socket.socket | None = None
        self.packets = PacketReader()
        self.wide = False
        self.last_error = ""

    # ---- transport ----

    def _recv(self) -> bytes:
        data = self.conn.recv(RECV_SIZE)
        if not data:
            raise ConnectionError("gdb closed the connection")
        return data

    def read_packet(self) -> str:
        """The next packet body (checksum good, escapes undone) or "\x03"; a bad checksum is
        answered with ``-`` (gdb sends the packet again)."""
        while True:
            for event in self.packets.events():
                if event is BAD_PACKET:
                    self.conn.sendall(b"-")
                    continue
                if event != "\x03":
                    self.conn.sendall(b"+")
                return event
            self.packets.feed(self._recv())

    def send(self, body: str) -> None:
        self.conn.sendall(frame(body))

    def interrupted(self) -> bool:
        if self.packets.take_interrupt():
            return True
        ready, _, _ = select.select([self.conn], [], [], 0)
        if ready:
            self.packets.feed(self._recv())
            return self.packets.take_interrupt()
        return False

    # ---- serving ----

    def accept(self) -> None:
        self.conn, _ = self.listener.accept()
        self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.wide = self.dbg.state().code_bits == 64

    def serve(self, max_instructions: int | None = None, timeout: float | None = None):
        """Answer gdb until it detaches or kills the machine, or the guest ends.

        ``max_instructions`` and ``timeout`` (`vmm run --max-insns/--timeout`) hold while no
        debugger is attached: before gdb connects and after it detaches or goes away."""
        from vmm.machine import MachineExit

        self.limit = None if max_instructions is None else self.dbg.instructions + max_instructions
        self.max_instructions = max_instructions
        self.wall_end = None if timeout is None else time.monotonic() + timeout
        self.timeout = timeout
        if self.conn is None:
            ended = self._run_until_connect()
            if ended is not None:
                return ended
        while True:
            try:
                packet = self.read_packet()
                if packet == "\x03":
                    continue
                if packet.startswith("D"):
                    self.send("OK")
                    return self._run_free()
                if packet.startswith("k"):
                    return MachineExit("stopped", detail="killed by gdb")
                reply = self.answer(packet)
                if reply is not None:
                    self.send(reply)
            except (ConnectionError, OSError):  # gdb went away, even in the middle of a continue
                return self._run_free()
            if self.dbg.finished is not None and packet[:1] in ("c", "s"):
                return self.machine.exit

    def answer(self, packet: str) -> str | None:
        """The reply to one packet; a malformed one gets an error number, never a traceback."""
        try:
            return self.handle(packet)
        except BadPacket as exc:
            self.last_error = str(exc)
            return "E22"  # EINVAL: gdb shows the number; `monitor error` gives the reason
        except VmmError as exc:
            self.last_error = str(exc)
            return "E01"

    def _over_limits(self):
        """The MachineExit for --max-insns/--timeout once reached, else None."""
        from vmm.machine import MachineExit

        if self.limit is not None and self.dbg.instructions >= self.limit:
            return MachineExit("limit", detail=f"stopped after {self.max_instructions:,} instructions")
        if self.wall_end is not None and time.monotonic() >= self.wall_end:
            return MachineExit("timeout", detail=f"stopped after {self.timeout:g} s of wall time")
        return None

    def _run_until_connect(self):
        """Run the guest in chunks, looking for gdb between them; the guest's end
        (a MachineExit) if it came first, else None with gdb connected."""
        while True:
            ready, _, _ = select.select([self.listener], [], [], 0)
            if ready:
                self.accept()
                return None
            limited = self._over_limits()
            if limited is not None:
                self.machine.exit = limited
                return limited
            chunk = CONTINUE_CHUNK if self.limit is None else min(CONTINUE_CHUNK, self.limit - self.dbg.instructions)
            event = self.dbg.cont(chunk)
            if event.kind == "exit":
                return self.machine.exit

    def _run_free(self):
        self.dbg.close()
        left = None if self.limit is None else max(0, self.limit - self.machine.cpu.instructions)
        wall = None if self.wall_end is None else max(0.0, self.wall_end - time.monotonic())
        if left == 0 or wall == 0.0:
            return self._over_limits()
        result = self.machine.run(max_instructions=left, timeout=wall)
        if result.reason == "timeout":
            result.detail = f"stopped after {self.timeout:g} s of wall time"
        elif result.reason == "limit":
            result.detail = f"stopped after {self.max_instructions:,} instructions"
        return result

    def handle(self, packet: str) -> str | None:
        kind = packet[:1]
        if packet.startswith("qSupported"):
            return "PacketSize=4000;qXfer:features:read+;swbreak+;hwbreak+"
        if packet.startswith("qXfer:features:read:"):
            annex, _, where = packet[len("qXfer:features:read:") :].partition(":")
            if annex != "target.xml":
                return "E00"  # no such annex
            offset_text, length_text = _fields(where, ",", 2, "qXfer")[:2]
            offset, length = _hex(offset_text, "qXfer offset"), _hex(length_text, "qXfer length")
            xml = _xml("i386:x86-64", GPR64, 64) if self.wide else _xml("i386", GPR32, 32)
            chunk = xml[offset : offset + length]
            return ("l" if offset + length >= len(xml) else "m") + chunk
        if packet.startswith("qRcmd,"):
            try:
                command = bytes.fromhex(packet[6:]).decode("utf-8")
            except ValueError:
                raise BadPacket("qRcmd: the command is not hex-encoded UTF-8") from None
            try:
                text = self.commands.run(command) if command.strip() != "error" else self.last_error or "no error"
            except VmmError as exc:
                text = f"error: {exc}"
            if text:
                self.send("O" + (text + "\n").encode().hex())
            return "OK"
        if packet in ("qAttached",):
            return "1"
        if packet == "qC":
            return "QC1"
        if packet == "qfThreadInfo":
            return "m1"
        if packet == "qsThreadInfo":
            return "l"
        if kind == "H" or packet.startswith("vMustReply"):
            return "OK"
        if kind == "?":
            return f"S{SIGTRAP:02x}"
        if kind == "g":
            return self.registers().hex()
        if kind == "p":
            return self.register(_hex(packet[1:], "p register"))
        if kind == "m":
            addr_text, length_text = _fields(packet[1:], ",", 2, "m")[:2]
            addr, length = _hex(addr_text, "m address"), min(_hex(length_text, "m length"), MAX_MEMORY_READ)
            try:
                return read_linear(self.dbg.reader, self.dbg.state(), addr, length).hex()
            except PageFault:
                return "E14"
        if kind == "M":
            where, data_text = _fields(packet[1:], ":", 2, "M")[:2]
            addr_text, length_text = _fields(where, ",", 2, "M")[:2]
            addr, length = _hex(addr_text, "M address"), _hex(length_text, "M length")
            try:
                data = bytes.fromhex(data_text)
            except ValueError:
                raise BadPacket("M: the data is not hex") from None
            if len(data) != length:
                raise BadPacket(f"M: {len(data)} bytes of data for a length of {length}")
            try:
                write_linear(self.dbg.reader, self.dbg.state(), addr, data)
            except PageFault:
                return "E14"
            return "OK"
        if kind in ("Z", "z") and packet[1:3] in ("0,", "1,"):
            addr = _hex(_fields(packet[3:], ",", 2, kind)[0], f"{kind} address")
            if kind == "Z":
                self.dbg.cpu.add_breakpoint(addr)
            else:
                self.dbg.cpu.remove_breakpoint(addr)
            return "OK"
        if kind in ("Z", "z") and packet[1:2] in WATCH_TYPES and packet[2:3] == ",":
            addr_text, length_text = _fields(packet[3:].split(";")[0], ",", 2, kind)[:2]
            addr, length = _hex(addr_text, f"{kind} address"), _hex(length_text, f"{kind} length")
            if not 1 <= length <= MAX_WATCH_LENGTH:
                raise BadPacket(f"{kind}: watch length {length} (1-{MAX_WATCH_LENGTH})")
            value = (addr, length, WATCH_TYPES[packet[1]])
            if kind == "Z":
                self.dbg.add("watch", value, f"gdb watch {value[2]} {addr:#x} len {length}")
            else:
                for bp in self.dbg.breakpoints:
                    if bp.kind == "watch" and bp.value == value:
                        self.dbg.delete(bp.number)
                        break
            return "OK"
        if kind in ("Z", "z") and packet[1:2] in ("0", "1", *WATCH_TYPES):
            raise BadPacket(f"{packet[:2]}: expected {packet[:2]},ADDR,KIND")
        if kind == "s":
            event = self.dbg.step(1)
            return self.stop_reply(event)
        if kind == "c":
            return self.cont()
        return ""  # unsupported: gdb falls back

    def cont(self) -> str:
        while True:
            event = self.dbg.cont(CONTINUE_CHUNK)
            if event.kind != "done":
                return self.stop_reply(event)
            if self.interrupted():
                return f"S{SIGINT:02x}"

    def stop_reply(self, event) -> str:
        if event.kind == "exit":
            exit_ = self.machine.exit
            return f"W{(exit_.status if exit_ and exit_.reason == 'exit-port' else 0) & 0xFF:02x}"
        if event.kind == "watch" and event.access is not None and event.breakpoint is not None:
            start, _length, access = event.breakpoint.value
            # gdb looks the address up among its watchpoints: name one inside this one.
            address = max(start, event.access.address)
            return f"T{SIGTRAP:02x}{STOP_NAMES[access]}:{address:x};"
        return f"S{SIGTRAP:02x}"

    # ---- registers ----

    def _values(self) -> list[tuple[int, int]]:
        state = self.dbg.state()
        width = 8 if self.wide else 4
        names = GPR64 if self.wide else [f"r{n[1:]}" for n in GPR32]
        values = [(state.gprs[n], width) for n in names]
        values.append((state.rip, width))
        values.append((state.rflags, 4))
        values += [(state.segments[s].selector, 4) for s in SEGMENTS]
        values += [(0, 10)] * 8 + [(0x37F, 4), (0, 4), (0xFFFF, 4)] + [(0, 4)] * 5
        return values

    def registers(self) -> bytes:
        return b"".join((v & ((1 << 8 * w) - 1)).to_bytes(w, "little") for v, w in self._values())

    def register(self, number: int) -> str:
        values = self._values()
        if number >= len(values):
            return "E45"
        value, width = values[number]
        return (value & ((1 << 8 * width) - 1)).to_bytes(width, "little").hex()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


def serve_gdb(machine, endpoint: str, wait: bool = False) -> GdbStub:
    """Listen for gdb; with ``wait``, block until it connects (the machine waits at reset);
    without, ``serve`` runs the guest until gdb connects or the guest ends."""
    stub = GdbStub(machine, endpoint)
    host, port = stub.address
    print(f"vmm: gdb stub on tcp {host}:{port}", file=sys.stderr, flush=True)  # listening from now on
    if wait:
        stub.accept()
    return stub
