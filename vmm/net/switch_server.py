"""`vmm switch PATH`: a :class:`~vmm.net.switch.Switch` served on a UNIX stream socket.

One process, one selector loop, no threads. Each connection is a port: a vmm NIC says hello
with its port mode first (vmm.net.switch_wire); a peer that starts with a frame (QEMU's
``-netdev stream``) gets the default mode. Output to a slow peer is buffered up to
``OUT_LIMIT`` bytes and frames past that are dropped (counted), so one stuck peer never
stalls the others. A peer that disconnects, breaks the framing or says something invalid
frees its port and its MAC table entries. Uplinks are NIC backends (``--nic user``'s NAT,
say) attached as one more port.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path

from vmm.errors import ConfigError, VmmError
from vmm.net.backend import NetBackend
from vmm.net.pcap import PcapWriter
from vmm.net.switch import DEFAULT_AGEING_NS, Port, PortMode, Switch, format_show
from vmm.net.switch_wire import RecordReader, WireError, control_record, frame_record

OUT_LIMIT = 4 * 1024 * 1024  # bytes queued for one peer before its frames are dropped
MAX_PORTS = 256
READ_SIZE = 256 * 1024


class Peer:
    """One connection: its reader, its output queue and (once known) its port."""

    def __init__(self, sock: socket.socket, number: int) -> None:
        self.sock = sock
        self.number = number
        self.reader = RecordReader()
        self.out = bytearray()
        self.port: Port | None = None
        self.closing = False  # close once the output is flushed (after `show`)


class SwitchServer:
    def __init__(self, path: Path, default_mode: PortMode | None = None, pcap_dir: Path | None = None,
                 ageing_ns: int = DEFAULT_AGEING_NS, log: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self.path = Path(path)
        self.default_mode = default_mode or PortMode.access(1)
        self.pcap_dir = pcap_dir
        self.log = log or (lambda line: print(f"vmm switch: {line}", file=sys.stderr, flush=True))
        self.switch = Switch(time.monotonic_ns, ageing_ns, name=str(path))
        self.selector = selectors.DefaultSelector()
        self.peers: dict[int, Peer] = {}
        self.uplinks: list[NetBackend] = []
        self.captures: dict[int, PcapWriter] = {}
        self._peer_count = 0
        self._uplink_fds: dict[int, NetBackend] = {}
        self._stop = False
        if pcap_dir is not None:
            try:
                Path(pcap_dir).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"{pcap_dir}: cannot make the capture directory: {exc.strerror}") from None
        self.listener = self._listen()

    def _listen(self) -> socket.socket:
        path = self.path
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise ConfigError(f"{path}: exists and is not a socket (choose another path)")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(path))
            except OSError:
                path.unlink()  # a stale socket of a switch that is gone
            else:
                raise ConfigError(f"{path}: a switch already serves this socket")
            finally:
                probe.close()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(path))
        except OSError as exc:
            listener.close()
            raise ConfigError(f"{path}: cannot serve the switch here: {exc.strerror}") from None
        listener.listen(64)
        listener.setblocking(False)
        self.selector.register(listener, selectors.EVENT_READ, None)
        return listener

    # ---- ports ----

    def _capture(self, port: Port) -> None:
        if self.pcap_dir is None:
            return
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in port.name)
        writer = PcapWriter(Path(self.pcap_dir) / f"port{port.number}-{safe}.pcap", time.time_ns)
        self.captures[port.number] = writer
        port.tap = writer.write

    def add_uplink(self, backend: NetBackend, mode: PortMode, name: str) -> Port:
        port = self.switch.add_port(name, mode, backend.send)
        backend.attach(lambda frame, n=port.number: self.switch.receive(n, frame))
        self._capture(port)
        self.uplinks.append(backend)
        self.log(f"port {port.number}: uplink {name} ({mode.describe()})")
        return port

    def _open_port(self, peer: Peer, name: str, mode: PortMode) -> None:
        peer.port = self.switch.add_port(name, mode, lambda frame, p=peer: self._send(p, frame_record(frame)))
        self._capture(peer.port)
        self.log(f"port {peer.port.number}: {name} connected ({mode.describe()})")

    def _send(self, peer: Peer, record: bytes) -> None:
        if len(peer.out) + len(record) > OUT_LIMIT:
            if peer.port is not None:
                peer.port.count("drop_backlog")
            return
        was_empty = not peer.out
        peer.out += record
        if was_empty:
            self._flush(peer)

    def _flush(self, peer: Peer) -> None:
        try:
            sent = peer.sock.send(peer.out)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._close(peer, "gone")
            return
        del peer.out[:sent]
        if peer.sock.fileno() < 0:
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if peer.out else 0)
        self.selector.modify(peer.sock, events, peer)
        if not peer.out and peer.closing:
            self._close(peer, None)

    def _close(self, peer: Peer, why: str | None) -> None:
        if self.peers.pop(peer.number, None) is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(peer.sock)
        peer.sock.close()
        if peer.port is not None:
            self.switch.remove_port(peer.port.number)
            writer = self.captures.pop(peer.port.number, None)
            if writer is not None:
                writer.close()
            self.log(f"port {peer.port.number}: {peer.port.name} disconnected{f' ({why})' if why else ''}")

    # ---- records ----

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except OSError:
            return
        if len(self.peers) >= MAX_PORTS:
            sock.close()
            self.switch.counters["refused_full"] = self.switch.counters.get("refused_full", 0) + 1
            return
        sock.setblocking(False)
        self._peer_count += 1
        peer = Peer(sock, self._peer_count)
        self.peers[peer.number] = peer
        self.selector.register(sock, selectors.EVENT_READ, peer)

    def _readable(self, peer: Peer) -> None:
        try:
            data = peer.sock.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close(peer, None)
            return
        try:
            records = peer.reader.feed(data)
        except WireError as exc:
            self.switch.counters["protocol_errors"] = self.switch.counters.get("protocol_errors", 0) + 1
            self._close(peer, str(exc))
            return
        for kind, body in records:
            if peer.number not in self.peers:
                return
            if kind == "frame":
                if peer.port is None:
                    self._open_port(peer, f"stream-{peer.number}", self.default_mode)
                self.switch.receive(peer.port.number, body)
            else:
                self._control(peer, body)

    def _control(self, peer: Peer, message: dict) -> None:
        if "show" in message:
            peer.closing = True
            self._send(peer, control_record({"show": self.switch.describe()}))
            return
        hello = message.get("hello")
        if peer.port is not None or not isinstance(hello, dict):
            self._send(peer, control_record({"error": "expected one hello before any frame"}))
            peer.closing = True
            return
        name = str(hello.get("name", f"peer-{peer.number}"))[:64]
        try:
            mode = PortMode.from_dict(hello.get("mode", {}))
        except ConfigError as exc:
            self._send(peer, control_record({"error": str(exc)}))
            peer.closing = True
            return
        self._open_port(peer, name, mode)
        self._send(peer, control_record({"port": peer.port.number, "mode": mode.describe()}))

    # ---- the loop ----

    def _sync_uplink_fds(self) -> float:
        """Wait on the uplinks' current fds (user net opens and closes host sockets as it
        goes); the select timeout their timers allow."""
        wanted = {fd: backend for backend in self.uplinks for fd in backend.fds()}
        for fd in set(self._uplink_fds) - set(wanted):
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.selector.unregister(fd)
        for fd, backend in wanted.items():
            if fd not in self._uplink_fds:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self.selector.register(fd, selectors.EVENT_READ, backend)
        self._uplink_fds = wanted
        timeouts = [t for backend in self.uplinks if (t := backend.timeout_ns()) is not None]
        return min([0.5, *(max(0, t) / 1e9 for t in timeouts)])

    def serve(self, until: Callable[[], bool] | None = None) -> None:
        while not self._stop and not (until and until()):
            timeout = self._sync_uplink_fds()
            for backend in self.uplinks:
                backend.poll()
            for key, events in self.selector.select(timeout=timeout):
                target = key.data
                if target is None:
                    self._accept()
                elif isinstance(target, Peer):
                    if events & selectors.EVENT_WRITE and target.number in self.peers:
                        self._flush(target)
                    if events & selectors.EVENT_READ and target.number in self.peers:
                        self._readable(target)
                else:
                    target.poll()

    def stop(self) -> None:
        self._stop = True

    def close(self) -> None:
        for peer in list(self.peers.values()):
            self._close(peer, "switch stopped")
        for backend in self.uplinks:
            backend.close()
        for writer in self.captures.values():
            writer.close()
        self.selector.close()
        self.listener.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


def run_switch(path: Path, default_mode: PortMode, pcap_dir: Path | None, ageing_ns: int,
               uplinks: list[tuple[NetBackend, PortMode, str]]) -> int:  # fmt: skip
    server = SwitchServer(path, default_mode, pcap_dir, ageing_ns)
    for backend, mode, name in uplinks:
        server.add_uplink(backend, mode, name)
    previous = signal.signal(signal.SIGTERM, lambda *_: server.stop())
    server.log(f"serving {path} (pid {os.getpid()}; a peer without hello gets {default_mode.describe()}); "
               f"Ctrl-C stops it")  # fmt: skip
    try:
        server.serve()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.close()
    server.log("stopped")
    return 0


def show_switch(path: Path, as_json: bool = False, timeout: float = 5.0) -> str:
    """What `vmm switch show PATH` prints (asks the running switch over its socket)."""
    import json

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(path))
        except OSError as exc:
            raise VmmError(f"{path}: no switch answers here ({exc.strerror or exc})") from None
        sock.sendall(control_record({"show": True}))
        reader = RecordReader()
        while True:
            try:
                data = sock.recv(READ_SIZE)
            except OSError as exc:
                raise VmmError(f"{path}: the switch did not answer ({exc})") from None
            if not data:
                raise VmmError(f"{path}: the switch closed the connection without answering")
            for kind, body in reader.feed(data):
                if kind == "control" and "show" in body:
                    info = body["show"]
                    return json.dumps(info, indent=2) if as_json else format_show(info)
    finally:
        sock.close()
