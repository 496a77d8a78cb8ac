"""System control port A (0x92): the "fast A20" and fast reset of PS/2 and later PCs.

Source: IBM PS/2 Hardware Interface Technical Reference, "System Control Port A"; the
same register in the Intel 82371AB (PIIX4) datasheet, section 4.1.1 (Port 92h).
Bit 1 gates address line 20; a 0-to-1 transition of bit 0 resets the CPU (bit 0 reads
back as written until then, PIIX4 style, and is cleared by the reset).

Emulated: bits 0 and 1 with their callbacks; bits 2-7 are kept as written (the security
lock and activity-light bits have no effect here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vmm.devices.base import Device

FAST_RESET, A20_ENABLE = 0x01, 0x02


class FastA20(Device):
    """Port 0x92."""

    name = "port92"
    ports = [(0x92, 1)]

    def __init__(self, set_a20: Callable[[bool], None], request_reset: Callable[[], None]) -> None:
        self._set_a20 = set_a20
        self._request_reset = request_reset
        self.value = 0

    def reset(self) -> None:
        self.value = 0  # A20 gate and reset bit cleared, as the PIIX4 powers up

    def io_read(self, port: int, size: int) -> int:
        if port != 0x92:
            return (1 << (8 * max(1, min(size, 4)))) - 1
        return self.value

    def io_write(self, port: int, size: int, value: int) -> None:
        if port != 0x92:
            return
        value &= 0xFF
        old, self.value = self.value, value
        if (old ^ value) & A20_ENABLE:
            self._set_a20(bool(value & A20_ENABLE))
        if value & FAST_RESET and not old & FAST_RESET:
            self._request_reset()

    @property
    def a20(self) -> bool:
        return bool(self.value & A20_ENABLE)

    def save(self) -> dict[str, Any]:
        return {"value": self.value}

    def restore(self, state: dict[str, Any]) -> None:
        self.value = int(state["value"]) & 0xFF
