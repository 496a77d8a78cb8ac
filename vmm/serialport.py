"""COM1's host end: stdout, a file, nothing, or a TCP socket (`vmm run --serial ...`).

Every endpoint has ``write(data)`` (what the guest sent), ``poll()`` (called by the run
loop between slices to pass host input to the guest, and to send output kept back),
``flush()`` (send output kept back now: before vmm's own lines on stderr),
``interactive`` (a person may be typing: the run loop then paces virtual time to wall time
while the guest idles) and ``close()``.

With ``socket:[HOST:]PORT`` vmm listens on HOST:PORT (default host 127.0.0.1) and serves one client at a time, as
QEMU's `-serial tcp::PORT,server,nowait` does: what the guest writes goes to the client
(and is dropped while none is connected), what the client sends is typed on COM1. The
run loop polls the socket between slices; nothing blocks the guest.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from vmm.confine import FileScope, ScopeRefusal, printable
from vmm.errors import ConfigError

if TYPE_CHECKING:
    import socket


def parse_endpoint(text: str, what: str = "--serial socket") -> tuple[str, int]:
    from vmm import listen  # sockets are loaded only for a socket endpoint

    return listen.parse_endpoint(text, what)


class SerialEndpoint:
    interactive = False
    lost = False  # a write failed (device full, reader gone): output is discarded from then on

    def _write_failed(self, where: str, exc: OSError) -> None:
        """Say once that COM1 output cannot be written, and drop it from then on (the guest runs on)."""
        if not self.lost:
            self.lost = True
            print(
                f"vmm: {where}: cannot write COM1 output: {exc.strerror or exc}; output discarded from here",
                file=sys.stderr,
                flush=True,
            )

    def attach(self, machine) -> None:
        self.machine = machine

    def write(self, data: bytes) -> None:
        pass

    def poll(self) -> None:
        pass

    def flush(self) -> None:
        """Send what write() kept back (a partial line on a pipe)."""

    def close(self) -> None:
        pass


class StdoutSerial(SerialEndpoint):
    """COM1 output on stdout, buffered as C's stdio buffers it: each write reaches a
    terminal at once; a pipe or file gets whole lines, and a partial line (a prompt) at
    the next ``poll``, between slices (a write per byte cost more than the UART model).
    The buffer is vmm's own: stdout may be unbuffered (PYTHONUNBUFFERED, ``python -u``)."""

    def __init__(self, stream) -> None:
        self.stream = stream
        try:
            self.line_buffered = not stream.isatty()
        except (AttributeError, ValueError):
            self.line_buffered = True
        self.buffer = bytearray()

    def write(self, data: bytes) -> None:
        if self.lost:
            return
        self.buffer += data
        if not self.line_buffered or b"\n" in data:
            self.flush()

    def poll(self) -> None:
        self.flush()

    def flush(self) -> None:
        if not self.buffer or self.lost:
            return
        data = bytes(self.buffer)
        self.buffer.clear()
        try:
            while data:  # an unbuffered stream may take part of it
                written = self.stream.write(data)
                data = data[written:] if written is not None else b""
            self.stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            self._write_failed("stdout", exc)

    def close(self) -> None:
        self.flush()


class FileSerial(SerialEndpoint):
    """COM1 output to a file; a file a bundle names is opened under the bundle's rule
    (``scope``: inside its folder, never through a symlink unless asked, see vmm.confine)."""

    def __init__(self, path: str, scope: FileScope | None = None) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        try:
            fd = scope.open(path, flags) if scope is not None else os.open(path, flags, 0o666)
        except ScopeRefusal as exc:
            raise ConfigError(f"serial0.fileName: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"--serial file:{printable(path)}: {exc.strerror}") from None
        self.handle = open(fd, "wb", buffering=0)  # noqa: SIM115 - closed by close()
        self.path = path

    def write(self, data: bytes) -> None:
        if self.lost:
            return
        try:
            self.handle.write(data)
        except OSError as exc:
            self._write_failed(printable(self.path), exc)

    def close(self) -> None:
        self.handle.close()


class SocketSerial(SerialEndpoint):
    interactive = True

    def __init__(self, endpoint: str) -> None:
        from vmm import listen

        host, port = parse_endpoint(endpoint)
        self.listener = listen.listen_tcp(host, port, f"--serial socket:{endpoint}: cannot listen", blocking=False)
        self.address = self.listener.getsockname()
        self.client: socket.socket | None = None
        self.machine = None

    def write(self, data: bytes) -> None:
        if self.client is None:
            return
        try:
            self.client.sendall(data)
        except OSError:
            self._drop_client()

    def poll(self) -> None:
        if self.client is None:
            try:
                self.client, _ = self.listener.accept()
            except BlockingIOError:
                return
            self.client.setblocking(False)
        try:
            data = self.client.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop_client()
            return
        if self.machine is not None:
            self.machine.send(data)

    def _drop_client(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def close(self) -> None:
        self._drop_client()
        self.listener.close()
