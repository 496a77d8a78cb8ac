"""``--nic switch=PATH[,vlan=N|trunk=N:M[,native=N]]``: a NIC plugged into `vmm switch PATH`.

Connects to the switch's UNIX socket, says hello with the port mode (vmm.net.switch_wire)
and waits (5 s at most) for the port number or the switch's error, which becomes the run's
error. Frames then go both ways as length-prefixed records; the socket is non-blocking
from there on: the machine polls it between slices and waits on it while the guest idles
(``external``). Frames the switch cannot take at once queue up to ``OUT_LIMIT`` bytes and
are dropped past that (counted); when the switch goes away the cable is unplugged: vmm says
so once and the NIC's frames go nowhere.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from vmm.errors import ConfigError
from vmm.net.backend import NetBackend
from vmm.net.switch import PortMode
from vmm.net.switch_wire import RecordReader, WireError, control_record, frame_record

OUT_LIMIT = 4 * 1024 * 1024
HELLO_TIMEOUT = 5.0


class SwitchBackend(NetBackend):
    kind = "switch"
    external = True

    def __init__(self, path: Path, mode: PortMode, name: str) -> None:
        super().__init__()
        self.path = Path(path)
        self.mode = mode
        self.out = bytearray()
        self.reader = RecordReader()
        self.stats = {"tx_dropped": 0, "rx_frames": 0}
        self._early: list[bytes] = []  # frames that came with the welcome, before attach()
        self.sock: socket.socket | None = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(HELLO_TIMEOUT)
        try:
            self.sock.connect(str(self.path))
            self.sock.sendall(control_record({"hello": {"name": name, "mode": mode.to_dict()}}))
            self.port = self._await_welcome()
        except OSError as exc:
            self.sock.close()
            raise ConfigError(f"switch={path}: no switch answers there ({exc.strerror or exc}); "
                              f"start one with `vmm switch {path}`") from None  # fmt: skip
        self.sock.setblocking(False)

    def _await_welcome(self) -> int:
        pending: list[bytes] = []
        while True:
            data = self.sock.recv(65536)
            if not data:
                raise ConfigError(f"switch={self.path}: the switch closed the connection")
            try:
                records = self.reader.feed(data)
            except WireError as exc:
                raise ConfigError(f"switch={self.path}: {exc}") from None
            for kind, body in records:
                if kind == "frame":
                    pending.append(body)
                elif "error" in body:
                    raise ConfigError(f"switch={self.path}: the switch refused the port: {body['error']}")
                elif "port" in body:
                    self._early = pending
                    return int(body["port"])

    def attach(self, deliver) -> None:
        super().attach(deliver)
        for frame in self._early:
            deliver(frame)
        self._early = []

    def fds(self) -> list[int]:
        return [self.sock.fileno()] if self.sock is not None else []

    def send(self, frame: bytes) -> None:
        if self.sock is None:
            return
        if len(self.out) + len(frame) + 4 > OUT_LIMIT:
            self.stats["tx_dropped"] += 1
            return
        self.out += frame_record(frame)
        self._flush()

    def _flush(self) -> None:
        if self.sock is None or not self.out:
            return
        try:
            sent = self.sock.send(self.out)
        except BlockingIOError:
            return
        except OSError:
            self._lost("the switch went away")
            return
        del self.out[:sent]

    def poll(self) -> None:
        while self.sock is not None:
            self._flush()
            try:
                data = self.sock.recv(262144)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._lost("the switch closed the connection")
                return
            try:
                records = self.reader.feed(data)
            except WireError as exc:
                self._lost(str(exc))
                return
            for kind, body in records:
                if kind == "frame":
                    self.stats["rx_frames"] += 1
                    self.deliver(body)

    def _lost(self, why: str) -> None:
        print(f"vmm: switch={self.path} port {self.port}: {why}; the NIC's cable is unplugged", file=sys.stderr)
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
