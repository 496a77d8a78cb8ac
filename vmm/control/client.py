"""The client end of the control channel (``vmm ctl``, ``vmm snapshot`` on a running VM, tests).

::

    with ControlClient.connect(control_socket(Path("vm/vm.vmx"))) as ctl:
        ctl.execute("pause")
        ctl.execute("snapshot-take", name="booted")
"""

from __future__ import annotations

import errno
import json
import socket
from pathlib import Path

from vmm.control.protocol import MAX_LINE
from vmm.control.sockets import connect_unix
from vmm.errors import VmmError

TIMEOUT = 120.0  # a take of a large machine writes its RAM first


class ControlError(VmmError):
    """The VM answered with an error object, or the channel failed."""

    def __init__(self, desc: str, error_class: str = "GenericError") -> None:
        super().__init__(desc)
        self.error_class = error_class


class NotRunning(VmmError):
    """Nobody serves the control socket: the VM is not running (or has no channel)."""


class ControlClient:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")
        self.greeting = self._read()
        self.events: list[dict] = []

    @classmethod
    def connect(cls, path: Path, timeout: float = TIMEOUT) -> ControlClient:
        try:
            sock = connect_unix(path, timeout)
        except FileNotFoundError:
            raise NotRunning(f"{path}: no control socket (is the VM running?)") from None
        except ConnectionRefusedError:
            raise NotRunning(f"{path}: nobody listens on the control socket (the VM is not running)") from None
        except PermissionError:
            raise ControlError(f"{path}: permission denied (only the VM's owner can use its control socket)") from None
        except OSError as exc:
            if exc.errno in (errno.ENOTDIR, errno.ENOENT):
                raise NotRunning(f"{path}: no control socket (is the VM running?)") from None
            raise ControlError(f"{path}: cannot connect: {exc.strerror}") from None
        return cls(sock)

    def _read(self) -> dict:
        try:
            line = self.file.readline(MAX_LINE * 4)
        except OSError as exc:
            raise ControlError(f"control channel: {exc}") from None
        if not line:
            raise ControlError("the VM closed the control channel")
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            raise ControlError(f"control channel: not JSON: {line[:80]!r}") from None
        if not isinstance(message, dict):
            raise ControlError(f"control channel: not an object: {line[:80]!r}")
        return message

    def send_line(self, data: bytes) -> dict:
        """Send raw bytes (one request line) and return the next reply (events are kept)."""
        self.sock.sendall(data)
        while True:
            message = self._read()
            if "event" in message:
                self.events.append(message)
                continue
            return message

    def execute(self, command: str, **arguments: object) -> object:
        request: dict = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        message = self.send_line(json.dumps(request).encode() + b"\n")
        if "error" in message:
            err = message["error"]
            raise ControlError(str(err.get("desc", err)), str(err.get("class", "GenericError")))
        return message.get("return")

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
