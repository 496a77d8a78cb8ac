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

import select
import socket
import sys

from vmm import listen
from vmm.cpu.paging import PageFault, read_linear, write_linear
from vmm.debug.commands import Commands
from vmm.debug.engine import Debugger
from vmm.errors import VmmError

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


class GdbStub:
    def __init__(self, machine, endpoint: str) -> None:
        host, port = parse_endpoint(endpoint)
        self.listener = listen.listen_tcp(host, port, f"--gdb: cannot listen on {host}:{port}")
        self.address = self.listener.getsockname()[:2]  # the port the kernel chose for port 0
        self.machine = machine
        self.dbg = Debugger(machine, checkpoint_every=None)
        self.commands = Commands(self.dbg)
        self.conn: socket.socket | None = None
        self.buffer = b""
        self.wide = False

    # ---- transport ----

    def _recv(self) -> bytes:
        data = self.conn.recv(4096)
        if not data:
            raise ConnectionError("gdb closed the connection")
        return data

    def read_packet(self) -> str:
        while True:
            while b"$" not in self.buffer or b"#" not in self.buffer.split(b"$", 1)[1]:
                if self.buffer.startswith(b"\x03"):
                    self.buffer = self.buffer[1:]
                    return "\x03"
                self.buffer += self._recv()
            start = self.buffer.index(b"$")
            if b"\x03" in self.buffer[:start]:
                self.buffer = self.buffer[start:]
                return "\x03"
            end = self.buffer.index(b"#", start)
            while len(self.buffer) < end + 3:
                self.buffer += self._recv()
            body = self.buffer[start + 1 : end]
            self.buffer = self.buffer[end + 3 :]
            self.conn.sendall(b"+")
            return body.decode("latin-1")

    def send(self, body: str) -> None:
        data = body.encode("latin-1")
        checksum = sum(data) & 0xFF
        self.conn.sendall(b"$" + data + b"#" + f"{checksum:02x}".encode())

    def interrupted(self) -> bool:
        if b"\x03" in self.buffer:
            self.buffer = self.buffer.replace(b"\x03", b"", 1)
            return True
        ready, _, _ = select.select([self.conn], [], [], 0)
        if ready:
            self.buffer += self._recv()
            return self.interrupted()
        return False

    # ---- serving ----

    def accept(self) -> None:
        self.conn, _ = self.listener.accept()
        self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.wide = self.dbg.state().code_bits == 64

    def serve(self):
        """Answer gdb until it detaches or kills the machine, or the guest ends."""
        from vmm.machine import MachineExit

        if self.conn is None:
            ended = self._run_until_connect()
            if ended is not None:
                return ended
        while True:
            try:
                packet = self.read_packet()
            except (ConnectionError, OSError):
                return self._run_free()
            if packet == "\x03":
                continue
            if packet.startswith("D"):
                self.send("OK")
                return self._run_free()
            if packet.startswith("k"):
                return MachineExit("stopped", detail="killed by gdb")
            try:
                reply = self.handle(packet)
            except VmmError as exc:
                reply = "E01"  # gdb shows only the number; the reason goes to `monitor`
                self.last_error = str(exc)
            if reply is not None:
                self.send(reply)
            if self.dbg.finished is not None and packet[:1] in ("c", "s"):
                return self.machine.exit

    def _run_until_connect(self):
        """Run the guest in chunks, looking for gdb between them; the guest's end
        (a MachineExit) if it came first, else None with gdb connected."""
        while True:
            ready, _, _ = select.select([self.listener], [], [], 0)
            if ready:
                self.accept()
                return None
            event = self.dbg.cont(CONTINUE_CHUNK)
            if event.kind == "exit":
                return self.machine.exit

    def _run_free(self):
        self.dbg.close()
        return self.machine.run()

    def handle(self, packet: str) -> str | None:
        kind = packet[:1]
        if packet.startswith("qSupported"):
            return "PacketSize=4000;qXfer:features:read+;swbreak+;hwbreak+"
        if packet.startswith("qXfer:features:read:target.xml:"):
            offset, length = (int(x, 16) for x in packet.rsplit(":", 1)[1].split(","))
            xml = _xml("i386:x86-64", GPR64, 64) if self.wide else _xml("i386", GPR32, 32)
            chunk = xml[offset : offset + length]
            return ("l" if offset + length >= len(xml) else "m") + chunk
        if packet.startswith("qRcmd,"):
            command = bytes.fromhex(packet[6:]).decode()
            try:
                text = self.commands.run(command)
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
            return self.register(int(packet[1:], 16))
        if kind == "m":
            addr, length = (int(x, 16) for x in packet[1:].split(","))
            try:
                return read_linear(self.dbg.reader, self.dbg.state(), addr, length).hex()
            except PageFault:
                return "E14"
        if kind == "M":
            where, data = packet[1:].split(":", 1)
            addr = int(where.split(",")[0], 16)
            try:
                write_linear(self.dbg.reader, self.dbg.state(), addr, bytes.fromhex(data))
            except PageFault:
                return "E14"
            return "OK"
        if kind in ("Z", "z") and packet[1:2] in ("0", "1"):
            addr = int(packet[3:].split(",")[0], 16)
            if kind == "Z":
                self.dbg.cpu.add_breakpoint(addr)
            else:
                self.dbg.cpu.remove_breakpoint(addr)
            return "OK"
        if kind in ("Z", "z") and packet[1:2] in WATCH_TYPES:
            addr, length = (int(x, 16) for x in packet[3:].split(";")[0].split(",")[:2])
            value = (addr, length, WATCH_TYPES[packet[1]])
            if kind == "Z":
                self.dbg.add("watch", value, f"gdb watch {value[2]} {addr:#x} len {length}")
            else:
                for bp in self.dbg.breakpoints:
                    if bp.kind == "watch" and bp.value == value:
                        self.dbg.delete(bp.number)
                        break
            return "OK"
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
