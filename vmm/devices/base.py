"""What every device offers the machine: reset, and save/restore of its own state.

A device gets what it needs handed in at construction (IRQ lines, the clock, a memory
view, a block device) and never reaches into another device. ``save()`` returns plain
data (ints, bytes, str, lists, dicts) that ``restore()`` accepts on a fresh instance built
with the same wiring, after which the device behaves identically (DESIGN.md principle 4).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class Device(ABC):
    """Base class: a named piece of hardware with resettable, saveable state."""

    name = "device"

    def reset(self) -> None:  # noqa: B027 - optional: nothing to do by default
        """Return to the power-on state."""

    @abstractmethod
    def save(self) -> dict[str, Any]: ...

    @abstractmethod
    def restore(self, state: dict[str, Any]) -> None: ...
