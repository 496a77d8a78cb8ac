"""The control channel of a running VM, served from the run loop between slices.

``vmm run`` hands :meth:`ControlServer.poll` to ``Machine.run`` as its ``poll``: between
two CPU slices (never during one, and with no thread of its own) it accepts connections,
reads whole request lines and answers them, so a command always sees the machine between
instructions. ``pause`` keeps the loop inside ``poll`` (still serving the socket and the
terminal) until ``continue`` or ``quit``. Commands (QMP names in brackets are accepted too):

==================  ===============================================================
status              {"status": running|paused, instructions, time_ns, stage, snapshot}
pause [stop]        stop running the guest (the run loop waits in the channel)
continue [cont]     run again
snapshot-take       {"name", "description"?}: NAME-SnapshotN.vmsn/.vmem + delta disks
snapshot-revert     {"name"}: back to that snapshot (RAM by mmap, device state, disks)
snapshot-delete     {"name"}
snapshot-list       the tree as data
suspend             NAME.vmss + NAME.vmem, then the monitor exits; `vmm run` resumes
balloon             {"mib": N} or QMP's {"value": BYTES}: the balloon's target size
send-keys           {"keys": ["C-c", "Enter", "text"]}: PS/2 keys as tmux names them
send                {"text": "..."}: bytes typed on COM1
screenshot          {"file": "/abs/out.png"}: the screen as PNG, and its text
quit                power the VM off (the run ends)
query-commands      the command names
==================  ===============================================================

Only the owner can connect: the socket is 0600 in a 0700 folder (vmm.control.sockets),
and a peer whose uid (SO_PEERCRED) is neither ours nor root's is dropped as well.
"""

from __future__ import annotations

import os
import select
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from vmm.control import protocol
from vmm.control.protocol import RequestError
from vmm.control.sockets import listen_unix, peer_uid, private_folder
from vmm.errors import VmmError
from vmm.exits import MachineExit

if TYPE_CHECKING:
    from vmm.machine import Machine

POLL_EVERY = 0.02  # seconds of wall time between looks at the socket while the guest runs


class _Client:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.discarding = False  # inside a line that is too long: drop until its newline


class ControlServer:
    """Serves one socket for one machine (see the module docstring)."""

    def __init__(self, machine: Machine, path: Path, vmx_path: Path | None = None,
                 inner_poll: Callable[[], None] | None = None, private: bool = True) -> None:  # fmt: skip
        self.machine = machine
        self.path = Path(os.path.abspath(path))
        self.vmx_path = vmx_path
        self.inner_poll = inner_poll
        if private:
            private_folder(self.path.parent)
        self.listener = listen_unix(self.path)
        self.clients: list[_Client] = []
        self.paused = False
        self.suspend_requested = False
        self.suspended_to: Path | None = None
        self._last_look = 0.0
        self._snapshots = None
        from vmm import __version__

        self._greeting = protocol.greeting(__version__)

    # ---- the run loop's hook ----

    def poll(self) -> None:
        if self.inner_poll is not None:
            self.inner_poll()
        if self.suspend_requested and self.machine.exit is None:
            self.suspend_requested = False
            self._suspend()
            return
        now = time.monotonic()
        if now - self._last_look >= POLL_EVERY:
            self._last_look = now
            self.serve(0)
        while self.paused and self.machine.exit is None:
            if self.inner_poll is not None:
                self.inner_poll()
            if self.suspend_requested:
                self.suspend_requested = False
                self._suspend()
                return
            self.serve(0.05)

    def serve(self, timeout: float) -> None:
        """Accept and answer what is waiting (at most ``timeout`` seconds of waiting)."""
        readable = [self.listener, *(c.sock for c in self.clients)]
        try:
            ready, _, _ = select.select(readable, [], [], timeout)
        except InterruptedError:
            return
        for sock in ready:
            if sock is self.listener:
                self._accept()
            else:
                client = next((c for c in self.clients if c.sock is sock), None)
                if client is not None:
                    self._read(client)

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        try:
            uid = peer_uid(sock)
        except OSError:
            uid = -1
        if uid not in (os.geteuid(), 0) or len(self.clients) >= protocol.MAX_CLIENTS:
            sock.close()
            return
        sock.setblocking(True)
        sock.settimeout(5.0)
        client = _Client(sock)
        if self._send(client, self._greeting):
            self.clients.append(client)

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        client.buffer += data
        while client in self.clients:
            newline = client.buffer.find(b"\n")
            if newline < 0:
                if len(client.buffer) > protocol.MAX_LINE:
                    client.buffer.clear()
                    if not client.discarding:
                        client.discarding = True
                        self._send(client, protocol.error(None, f"request longer than {protocol.MAX_LINE} bytes"))
                return
            line = bytes(client.buffer[:newline]).strip()
            del client.buffer[: newline + 1]
            if client.discarding:
                client.discarding = False
                continue
            if line:
                self._send(client, self.answer(line))

    def _send(self, client: _Client, data: bytes) -> bool:
        try:
            client.sock.sendall(data)
            return True
        except OSError:
            self._drop(client)
            return False

    def _drop(self, client: _Client) -> None:
        if client in self.clients:
            self.clients.remove(client)
        client.sock.close()

    def broadcast(self, data: bytes) -> None:
        for client in list(self.clients):
            self._send(client, data)

    def close(self) -> None:
        for client in list(self.clients):
            self._drop(client)
        self.listener.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass

    # ---- requests ----

    def answer(self, line: bytes) -> bytes:
        """The reply to one request line (never raises for anything the client sent)."""
        request = None
        try:
            request = protocol.parse_request(line)
            handler = COMMANDS.get(request.command)
            if handler is None:
                raise RequestError(f"the command {request.command} has not been found", "CommandNotFound")
            return protocol.reply(request, handler(self, request.arguments))
        except RequestError as exc:
            return protocol.error(request, str(exc), exc.error_class)
        except VmmError as exc:
            return protocol.error(request, str(exc))

    def snapshots(self):
        if self.vmx_path is None:
            raise RequestError("snapshots need a bundle: this VM was not started from a .vmx")
        if self._snapshots is None:
            from vmm.snapshot.bundle import BundleSnapshots

            self._snapshots = BundleSnapshots(self.vmx_path, self.machine)
        return self._snapshots

    def _suspend(self) -> dict:
        snapshots = self.snapshots()
        written = snapshots.suspend()
        self.suspended_to = snapshots.vmss_path
        self.machine.exit = MachineExit("suspended", detail=f"suspended to {snapshots.vmss_path}")
        self.paused = False
        self.broadcast(protocol.event("SUSPEND", {"file": str(snapshots.vmss_path)}))
        return {"file": str(snapshots.vmss_path), "memory_bytes": written}


def _arg(arguments: dict, name: str, kind: type, default: object = ...) -> object:
    if name not in arguments:
        if default is ...:
            raise RequestError(f'missing argument "{name}"')
        return default
    value = arguments[name]
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise RequestError(f'argument "{name}" must be {kind.__name__}, not {type(value).__name__}')
    return value


def _status(server: ControlServer, arguments: dict) -> dict:
    machine = server.machine
    current = None
    if server.vmx_path is not None:
        try:
            tree = server.snapshots().tree()
            current = tree.by_uid(tree.current).display_name if tree.current is not None else None
        except (VmmError, KeyError):
            current = None
    return {
        "status": "paused" if server.paused else "running",
        "running": not server.paused,
        "instructions": machine.instructions,
        "time_ns": machine.time_ns,
        "stage": machine.stages.current,
        "snapshot": current,
    }


def _pause(server: ControlServer, arguments: dict) -> dict:
    if not server.paused:
        server.paused = True
        server.broadcast(protocol.event("STOP"))
    return {}


def _continue(server: ControlServer, arguments: dict) -> dict:
    if server.paused:
        server.paused = False
        server.broadcast(protocol.event("RESUME"))
    return {}


def _take(server: ControlServer, arguments: dict) -> dict:
    name = _arg(arguments, "name", str)
    description = _arg(arguments, "description", str, "")
    started = time.perf_counter()
    result = server.snapshots().take(name, description)
    return {"uid": result.snapshot.uid, "name": name, "file": result.snapshot.filename,
            "memory_bytes": result.ram_bytes, "disks": result.deltas,
            "ms": round((time.perf_counter() - started) * 1000, 3)}  # fmt: skip


def _revert(server: ControlServer, arguments: dict) -> dict:
    name = _arg(arguments, "name", str)
    started = time.perf_counter()
    snap = server.snapshots().revert(name)
    saved = server.snapshots().saved(snap)
    if not saved.powered_on:
        server.machine.exit = MachineExit("stopped", detail=f"reverted to {name!r}, a snapshot of the VM powered off")
        server.paused = False
    return {"uid": snap.uid, "name": snap.display_name, "instructions": server.machine.instructions,
            "powered_on": saved.powered_on, "ms": round((time.perf_counter() - started) * 1000, 3)}  # fmt: skip


def _delete(server: ControlServer, arguments: dict) -> dict:
    snap = server.snapshots().delete(_arg(arguments, "name", str))
    return {"uid": snap.uid, "name": snap.display_name}


def _list(server: ControlServer, arguments: dict) -> dict:
    tree = server.snapshots().tree()
    return {
        "current": tree.current,
        "snapshots": [{"uid": s.uid, "name": s.display_name, "parent": s.parent, "file": s.filename,
                       "disks": [f for _, f in s.disks]} for s in tree.snapshots],
    }  # fmt: skip


def _suspend(server: ControlServer, arguments: dict) -> dict:
    return server._suspend()


def _balloon(server: ControlServer, arguments: dict) -> dict:
    if "mib" in arguments:
        mib = _arg(arguments, "mib", int)
    else:
        value = _arg(arguments, "value", int)
        mib = value >> 20
    pci = server.machine.pci
    if pci is None:
        raise RequestError("the balloon needs --machine pc --balloon (this VM is an isapc)")
    setter = getattr(pci, "set_balloon_target", None)
    if setter is not None:  # issue 16's call: checks the range, returns a BalloonStatus (ConfigError else)
        status = setter(mib)
        return {"target_mib": mib, "status": str(status)}
    if pci.balloon is None:
        raise RequestError("this machine has no balloon device (run it with --balloon, or vmm.balloon in the .vmx)")
    ram_mib = server.machine.memory.size >> 20
    if not 0 <= mib <= ram_mib:
        raise RequestError(f"balloon: target {mib} MiB is not between 0 and the guest's {ram_mib} MiB")
    pci.balloon.set_target(mib)
    return {"target_mib": mib, "actual_mib": pci.balloon.actual >> 8}


def _send_keys(server: ControlServer, arguments: dict) -> dict:
    from vmm.keys import scancodes_for_keys

    keys = _arg(arguments, "keys", list)
    if not keys or not all(isinstance(k, str) and 0 < len(k) <= 256 for k in keys) or len(keys) > 1024:
        raise RequestError('"keys" is a list of 1-1024 key names or texts, e.g. ["C-c", "Enter"]')
    codes = scancodes_for_keys(keys)
    server.machine.kbc.key_scancodes(codes)
    return {"bytes": len(codes)}


def _send(server: ControlServer, arguments: dict) -> dict:
    text = _arg(arguments, "text", str)
    if len(text) > protocol.MAX_LINE:
        raise RequestError("text too long")
    server.machine.send(text)
    return {"bytes": len(text.encode())}


def _screenshot(server: ControlServer, arguments: dict) -> dict:
    result: dict = {"text": server.machine.screen_text()}
    if "file" in arguments:
        path = _arg(arguments, "file", str)
        if not os.path.isabs(path) or "\0" in path:
            raise RequestError('"file" must be an absolute path (vmm ctl makes it one)')
        from vmm.cli.machine_flags import output_path

        target = output_path(path, "screenshot")
        try:
            width, height = server.machine.vga.screenshot_png(target)
        except OSError as exc:
            raise RequestError(f"{path}: cannot write: {exc.strerror}") from None
        result.update(file=path, width=width, height=height)
    return result


def _quit(server: ControlServer, arguments: dict) -> dict:
    server.machine.exit = MachineExit("stopped", detail="powered off from the control channel")
    server.paused = False
    server.broadcast(protocol.event("SHUTDOWN"))
    return {}


def _commands(server: ControlServer, arguments: dict) -> list:
    return [{"name": name} for name in COMMANDS]


COMMANDS: dict[str, Callable[[ControlServer, dict], object]] = {
    "status": _status, "query-status": _status, "pause": _pause, "stop": _pause,
    "continue": _continue, "cont": _continue, "snapshot-take": _take, "snapshot-revert": _revert,
    "snapshot-delete": _delete, "snapshot-list": _list, "suspend": _suspend, "balloon": _balloon,
    "send-keys": _send_keys, "send": _send, "screenshot": _screenshot, "quit": _quit,
    "query-commands": _commands, "qmp_capabilities": lambda server, arguments: {},
}  # fmt: skip
