"""A GDB remote serial protocol stub (`vmm run --gdb [HOST:]PORT`).

Packets (GDB manual, appendix E "Remote Protocol"): ``?``, ``g``/``p`` and ``G``/``P``
(registers: one fixed x86-64 layout in every mode, vmm.debug.gdbregs), ``m``/``M``
(memory at linear addresses, through the page tables from CR3), ``s``, ``c``
(interrupted by Ctrl-C, 0x03), ``Z0``/``Z1`` and ``z0``/``z1`` (breakpoints at linear
addresses: CS.base + IP in real mode, as QEMU), ``qXfer:features:read`` (the target
description), ``qRcmd`` (``monitor CMD`` runs vmm's debugger commands), ``D`` and ``k``.
Watchpoints ``Z2`` (write), ``Z3`` (read) and ``Z4`` (access) are vmm's
page-protection watchpoints (vmm.cpu.unicorn_debug); a hit answers ``T05watch:ADDR;``
(``rwatch``, ``awatch``) after the accessing instruction ran, as gdb expects of hardware
watchpoints.

Sessions: without ``--wait`` the guest runs while the stub listens; gdb connecting stops
it where it is. With ``--wait`` it stays at reset until gdb connects. A detach (``D``)
removes gdb's breakpoints and lets the guest run on while the stub listens again; gdb
vanishing (killed, connection lost, even in the middle of a ``continue``) stops the guest
where it is and waits for the next connection. ``k`` ends vmm, as QEMU's ``kill``.
"""

from __future__ import annotations

import select
import socket
import sys
import time
from collections.abc import Callable

from vmm import listen
from vmm.cpu.paging import PageFault, read_linear, write_linear
from vmm.debug import gdbregs
from vmm.debug.commands import Commands
from vmm.debug.engine import Debugger
from vmm.debug.gdbpackets import BAD_PACKET, MAX_PACKET, BadPacket, PacketReader, fields, frame, parse_hex
from vmm.errors import VmmError

__all__ = ["BAD_PACKET", "MAX_PACKET", "MAX_MONITOR_COUNT", "GdbStub", "PacketReader", "frame", "serve_gdb"]

RECV_SIZE = 1 << 16
MAX_MEMORY_READ = 0x10000  # bytes per `m` reply (gdb asks for less: PacketSize)
MAX_WATCH_LENGTH = 1 << 20
MAX_MONITOR_COUNT = 10_000_000  # instructions one `monitor step/continue N` may run
SIGTRAP = 5
SIGINT = 2
CONTINUE_CHUNK = 2_000_000  # instructions between looks for Ctrl-C
HOST_POLL_SECONDS = 0.05  # how often the host keyboard is read while the guest is stopped
WATCH_TYPES = {"2": "w", "3": "r", "4": "rw"}  # Z2 write, Z3 read, Z4 access
STOP_NAMES = {"w": "watch", "r": "rwatch", "rw": "awatch"}


def parse_endpoint(spec: str) -> tuple[str, int]:
    return listen.parse_endpoint(spec, "--gdb")


class HostLeft(Exception):
    """The user at vmm's terminal left (Ctrl-], or Ctrl-C when the terminal is not raw)."""


class SessionEnded(Exception):
    """gdb detached (``D``) or went away; ``detached`` says which."""

    def __init__(self, detached: bool) -> None:
        super().__init__("detached" if detached else "connection lost")
        self.detached = detached


class GdbStub:
    def __init__(self, machine, endpoint: str, poll: Callable[[], None] | None = None,
                 left: Callable[[], bool] | None = None) -> None:  # fmt: skip
        host, port = parse_endpoint(endpoint)
        self.listener = listen.listen_tcp(host, port, f"--gdb: cannot listen on {host}:{port}")
        self.address = self.listener.getsockname()[:2]  # the port the kernel chose for port 0
        self.machine = machine
        self.dbg = Debugger(machine, checkpoint_every=None)
        self.commands = Commands(self.dbg, max_count=MAX_MONITOR_COUNT)
        self.conn: socket.socket | None = None
        self.packets = PacketReader()
        self.last_error = ""
        self.poll = poll  # host input (the terminal's keys to the guest) between chunks
        self.left = left or (lambda: False)
        self.gdb_breakpoints: set[int] = set()
        self.sessions = 0

    # ---- transport ----

    def _recv(self) -> bytes:
        data = self.conn.recv(RECV_SIZE)
        if not data:
            raise ConnectionError("gdb closed the connection")
        return data

    def _host(self) -> None:
        """Read the host's keys; HostLeft once the user asked to leave."""
        if self.poll is not None:
            self.poll()
        if self.left():
            raise HostLeft

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
            while not select.select([self.conn], [], [], HOST_POLL_SECONDS)[0]:
                self._host()
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
        self.packets = PacketReader()
        self.sessions += 1

    def serve(self, max_instructions: int | None = None, timeout: float | None = None):
        """Serve gdb, one connection after another, until the guest ends, gdb kills the
        machine (``k``) or the user at the terminal leaves; the MachineExit.

        ``max_instructions`` and ``timeout`` (`vmm run --max-insns/--timeout`) hold while no
        debugger is attached: before gdb connects and after it detaches or goes away."""
        from vmm.machine import MachineExit

        self.limit = None if max_instructions is None else self.dbg.instructions + max_instructions
        self.max_instructions = max_instructions
        self.wall_end = None if timeout is None else time.monotonic() + timeout
        self.timeout = timeout
        running = True  # before the first connection and after a detach the guest runs
        try:
            while True:
                if self.conn is None:
                    ended = self._wait_for_gdb(running)
                    if ended is not None:
                        return ended
                try:
                    return self._session()
                except SessionEnded as ended:
                    running = ended.detached
                    self._end_session()
        except HostLeft:
            self._end_session()
            return MachineExit("stopped", detail="left")

    def _session(self):
        """Answer one gdb until it detaches or goes away (SessionEnded), or the run ends."""
        from vmm.machine import MachineExit

        while True:
            try:
                packet = self.read_packet()
                if packet == "\x03":
                    continue
                if packet.startswith("D"):
                    self.send("OK")
                    raise SessionEnded(detached=True)
                if packet.startswith("k"):
                    return MachineExit("stopped", detail="killed by gdb")
                reply = self.answer(packet)
                if reply is not None:
                    self.send(reply)
            except (ConnectionError, OSError):  # gdb went away, even in the middle of a continue
                raise SessionEnded(detached=False) from None
            if self.dbg.finished is not None and packet[:1] in ("c", "s", "C", "S"):
                return self.machine.exit

    def _end_session(self) -> None:
        """Forget gdb: its breakpoints and watchpoints go (a new gdb sets its own)."""
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
        self.conn = None
        for linear in self.gdb_breakpoints:
            self.dbg.cpu.remove_breakpoint(linear)
        self.gdb_breakpoints.clear()
        for bp in list(self.dbg.breakpoints):
            self.dbg.delete(bp.number)

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

    def _wait_for_gdb(self, running: bool):
        """Until gdb connects (then None): run the guest in chunks if ``running``, else
        keep it stopped; the guest's end, a limit or the host leaving (a MachineExit)
        if it came first."""
        while True:
            ready, _, _ = select.select([self.listener], [], [], 0 if running else HOST_POLL_SECONDS)
            if ready:
                self.accept()
                return None
            self._host()
            limited = self._over_limits()
            if limited is not None:
                self.machine.exit = limited
                return limited
            if not running:
                continue
            chunk = CONTINUE_CHUNK if self.limit is None else min(CONTINUE_CHUNK, self.limit - self.dbg.instructions)
            event = self.dbg.cont(chunk)
            if event.kind == "exit":
                return self.machine.exit

    def handle(self, packet: str) -> str | None:
        kind = packet[:1]
        if packet.startswith("qSupported"):
            return f"PacketSize={MAX_MEMORY_READ * 2 + 16:x};qXfer:features:read+;swbreak+;hwbreak+"
        if packet.startswith("qXfer:features:read:"):
            annex, _, where = packet[len("qXfer:features:read:") :].partition(":")
            if annex != "target.xml":
                return "E00"  # no such annex
            offset_text, length_text = fields(where, ",", 2, "qXfer")[:2]
            offset, length = parse_hex(offset_text, "qXfer offset"), parse_hex(length_text, "qXfer length")
            xml = gdbregs.TARGET_XML
            chunk = xml[offset : offset + length]
            return ("l" if offset + length >= len(xml) else "m") + chunk
        if packet.startswith("qRcmd,"):
            return self.monitor(packet[6:])
        if packet == "qAttached":
            return "1"
        if packet == "qC":
            return "QC1"
        if packet == "qfThreadInfo":
            return "m1"
        if packet == "qsThreadInfo":
            return "l"
        if kind == "H" or kind == "T":
            return "OK"
        if kind == "?":
            return f"S{SIGTRAP:02x}"
        if kind == "g":
            return gdbregs.encode_all(self.dbg.state()).hex()
        if kind == "G":
            return self.write_all(packet[1:])
        if kind == "p":
            number = parse_hex(packet[1:], "p register")
            if number >= len(gdbregs.LAYOUT):
                return "E45"
            return gdbregs.encode(number, gdbregs.register_values(self.dbg.state())[number]).hex()
        if kind == "P":
            number_text, value_text = fields(packet[1:], "=", 2, "P")[:2]
            return self.write_register(parse_hex(number_text, "P register"), _bytes(value_text, "P value"))
        if kind == "m":
            addr_text, length_text = fields(packet[1:], ",", 2, "m")[:2]
            addr, length = parse_hex(addr_text, "m address"), min(parse_hex(length_text, "m length"), MAX_MEMORY_READ)
            try:
                return read_linear(self.dbg.reader, self.dbg.state(), addr, length).hex()
            except PageFault:
                return "E14"
        if kind == "M":
            where, data_text = fields(packet[1:], ":", 2, "M")[:2]
            addr_text, length_text = fields(where, ",", 2, "M")[:2]
            addr, length = parse_hex(addr_text, "M address"), parse_hex(length_text, "M length")
            data = _bytes(data_text, "M data")
            if len(data) != length:
                raise BadPacket(f"M: {len(data)} bytes of data for a length of {length}")
            try:
                write_linear(self.dbg.reader, self.dbg.state(), addr, data)
            except PageFault:
                return "E14"
            return "OK"
        if kind in ("Z", "z") and packet[1:3] in ("0,", "1,"):
            addr = parse_hex(fields(packet[3:], ",", 2, kind)[0], f"{kind} address")
            if kind == "Z":
                self.dbg.cpu.add_breakpoint(addr)
                self.gdb_breakpoints.add(addr)
            elif addr in self.gdb_breakpoints:
                self.gdb_breakpoints.discard(addr)
                if not any(bp.kind == "addr" and bp.value == addr for bp in self.dbg.breakpoints):
                    self.dbg.cpu.remove_breakpoint(addr)
            return "OK"
        if kind in ("Z", "z") and packet[1:2] in WATCH_TYPES and packet[2:3] == ",":
            return self.watchpoint(kind, packet)
        if kind in ("Z", "z") and packet[1:2] in ("0", "1", *WATCH_TYPES):
            raise BadPacket(f"{packet[:2]}: expected {packet[:2]},ADDR,KIND")
        if kind in ("s", "S"):  # S/C carry a signal for the inferior: a machine has none to take
            return self.stop_reply(self.dbg.step(1))
        if kind in ("c", "C"):
            return self.cont()
        return ""  # unsupported (vMustReplyEmpty among them): gdb falls back

    def monitor(self, hex_command: str) -> str:
        """``monitor CMD``: any vmm debugger command; its output goes to gdb's console."""
        try:
            command = bytes.fromhex(hex_command).decode("utf-8")
        except ValueError:
            raise BadPacket("qRcmd: the command is not hex-encoded UTF-8") from None
        try:
            text = self.commands.run(command) if command.strip() != "error" else self.last_error or "no error"
        except VmmError as exc:
            text = f"error: {exc}"
        if text:
            self.send("O" + (text + "\n").encode().hex())
        return "OK"

    def watchpoint(self, kind: str, packet: str) -> str:
        addr_text, length_text = fields(packet[3:].split(";")[0], ",", 2, kind)[:2]
        addr, length = parse_hex(addr_text, f"{kind} address"), parse_hex(length_text, f"{kind} length")
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

    def cont(self) -> str:
        while True:
            event = self.dbg.cont(CONTINUE_CHUNK)
            if event.kind != "done":
                return self.stop_reply(event)
            if self.interrupted():
                return f"S{SIGINT:02x}"
            self._host()

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

    def write_register(self, number: int, raw: bytes) -> str:
        state = self.dbg.state()
        if not gdbregs.write_register(state, number, raw):
            return "E01"
        self.machine.cpu.set_state(state)
        return "OK"

    def write_all(self, text: str) -> str:
        raw = _bytes(text, "G")
        state = self.dbg.state()
        offset = 0
        for number, reg in enumerate(gdbregs.LAYOUT):
            size = reg.bits // 8
            if offset + size > len(raw):
                break
            gdbregs.write_register(state, number, raw[offset : offset + size])
            offset += size
        self.machine.cpu.set_state(state)
        return "OK"

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


def _bytes(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise BadPacket(f"{what}: the data is not hex") from None


def serve_gdb(machine, endpoint: str, wait: bool = False, poll=None, left=None) -> GdbStub:
    """Listen for gdb; with ``wait``, block until it connects (the machine waits at reset);
    without, ``serve`` runs the guest until gdb connects or the guest ends."""
    stub = GdbStub(machine, endpoint, poll=poll, left=left)
    host, port = stub.address
    print(f"vmm: gdb stub on tcp {host}:{port}", file=sys.stderr, flush=True)  # listening from now on
    if wait:
        while not select.select([stub.listener], [], [], HOST_POLL_SECONDS)[0]:
            if poll is not None:
                poll()
            if left is not None and left():
                return stub  # serve() sees the user leave at once
        stub.accept()
    return stub
