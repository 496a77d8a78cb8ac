"""Three one-port devices firmware and test guests talk to: POST codes, debug console, exit.

Sources: port 0x80 is the PC's POST diagnostic port (IBM PC/AT Technical Reference,
"Manufacturing Test Port"; Intel ICH datasheets decode it to the LPC bus for POST
cards). Port 0xE9 is the Bochs "port E9 hack" that QEMU's isa-debugcon device copies:
a byte written appears on the host, a read returns 0xE9 so a guest can detect it.
Port 0xF4 follows QEMU's isa-debug-exit: writing value v ends the emulator with status
(v << 1) | 1, so a status never reads as plain success by accident.

Emulated: exactly that. A multi-byte write to 0xE9 emits its low byte, as QEMU does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from vmm.devices.base import Device

POST_HISTORY = 256  # Linux writes port 0x80 for I/O delays: keep a bounded history


def _all_ones(size: int) -> int:
    return (1 << (8 * max(1, min(size, 4)))) - 1


class PostCodePort(Device):
    """Port 0x80: records each POST code and tells ``on_post``."""

    name = "post"
    ports = [(0x80, 1)]

    def __init__(self, on_post: Callable[[int], None] | None = None) -> None:
        self._on_post = on_post
        self.last_code: int | None = None
        self.history: deque[int] = deque(maxlen=POST_HISTORY)

    def reset(self) -> None:
        self.last_code = None

    def io_read(self, port: int, size: int) -> int:
        return _all_ones(size)  # write-only, as QEMU's port 0x80

    def io_write(self, port: int, size: int, value: int) -> None:
        if port != 0x80:
            return
        code = value & 0xFF
        self.last_code = code
        self.history.append(code)
        if self._on_post is not None:
            self._on_post(code)

    def save(self) -> dict[str, Any]:
        return {"last_code": self.last_code, "history": bytes(self.history)}

    def restore(self, state: dict[str, Any]) -> None:
        self.last_code = state["last_code"]
        self.history = deque(state["history"], maxlen=POST_HISTORY)


class DebugConsole(Device):
    """Port 0xE9: each byte written goes to ``sink``."""

    name = "debugcon"
    ports = [(0xE9, 1)]
    READBACK = 0xE9

    def __init__(self, sink: Callable[[int], None]) -> None:
        self._sink = sink

    def io_read(self, port: int, size: int) -> int:
        return self.READBACK if port == 0xE9 else _all_ones(size)

    def io_write(self, port: int, size: int, value: int) -> None:
        if port == 0xE9:
            self._sink(value & 0xFF)

    def save(self) -> dict[str, Any]:
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        pass  # no state: the bytes already went to the sink


class ExitPort(Device):
    """Port 0xF4: a write of v calls ``request_exit((v << 1) | 1)``."""

    name = "exit"
    ports = [(0xF4, 1)]

    def __init__(self, request_exit: Callable[[int], None]) -> None:
        self._request_exit = request_exit

    def io_read(self, port: int, size: int) -> int:
        return _all_ones(size)  # write-only

    def io_write(self, port: int, size: int, value: int) -> None:
        if port == 0xF4:
            self._request_exit(((value & _all_ones(size)) << 1) | 1)

    def save(self) -> dict[str, Any]:
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        pass  # no state
