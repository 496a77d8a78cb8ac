"""Interrupt request lines: how a device signals the interrupt controller.

A device is handed an :class:`IrqLine` at construction and never sees the PIC itself
(STYLE.md: a wiring board, not a god object). Lines are level signals; the 8259A in
edge-triggered mode latches a low-to-high transition.
"""

from __future__ import annotations

from collections.abc import Callable


class IrqLine:
    """One wire from a device to an interrupt controller input."""

    def __init__(self, number: int, sink: Callable[[int, bool], None]) -> None:
        self.number = number
        self._sink = sink
        self.level = False

    def set(self, level: bool) -> None:
        level = bool(level)
        if level != self.level:
            self.level = level
            self._sink(self.number, level)

    def raise_(self) -> None:
        self.set(True)

    def lower(self) -> None:
        self.set(False)

    def pulse(self) -> None:
        """A low-high-low pulse: latched by an edge-triggered input."""
        self.set(False)
        self.set(True)
        self.set(False)


class NullIrqLine(IrqLine):
    """A line connected to nothing (for devices tested on their own)."""

    def __init__(self, number: int = -1) -> None:
        super().__init__(number, lambda _n, _level: None)
