"""`vmm run --serial socket:HOST:PORT`: COM1 served over TCP, typed into and read from a
client, as with QEMU's `-serial tcp::PORT,server,nowait`."""

from __future__ import annotations

import socket
import subprocess
import sys

from tests.conftest import ROOT, require_file


def read_until(conn: socket.socket, buffer: bytearray, marker: bytes) -> None:
    while marker not in buffer:
        data = conn.recv(4096)
        assert data, f"connection closed before {marker!r}: {bytes(buffer)!r}"
        buffer.extend(data)


def test_shell_over_a_tcp_serial_port():
    image = require_file(ROOT / "guests" / "build" / "toyos.img")
    # Port 0: the kernel picks a free port and vmm names it once it listens (a port picked
    # here and bound later could be taken in between by another process).
    proc = subprocess.Popen([sys.executable, "-m", "vmm", "run", str(image), "--serial", "socket:127.0.0.1:0",
                             "--timeout", "60"], stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        line = proc.stderr.readline()
        assert line.startswith("vmm: COM1 on tcp 127.0.0.1:"), line  # listening now
        port = int(line.rsplit(":", 1)[1])
        conn = socket.create_connection(("127.0.0.1", port), timeout=30)
        conn.settimeout(30)
        seen = bytearray()
        read_until(conn, seen, b"toyos$ ")
        del seen[:]
        conn.sendall(b"echo over tcp\r")
        read_until(conn, seen, b"toyos$ ")
        assert b"echo over tcp\r\nover tcp\r\n" in seen
        conn.sendall(b"poweroff\r")
        assert proc.wait(timeout=60) == 1  # the toy OS's poweroff writes 0 to port 0xF4
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
