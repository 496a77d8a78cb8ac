"""vmm: an x86 PC emulator and minimal virtual machine monitor.

The public API for scripts and tests: build a :class:`MachineConfig`, make a
:class:`Machine` from it, ``run()`` it, and look at ``serial_transcript``,
``stages.timeline``, ``screen_text()`` and the returned exit.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at start-up
if TYPE_CHECKING:
    from vmm.config import DiskConfig, MachineConfig, SerialConfig
    from vmm.errors import VmmError
    from vmm.machine import Machine

__version__ = "0.1.0"
__all__ = ["DiskConfig", "Machine", "MachineConfig", "SerialConfig", "VmmError"]

# Imported when first used: `import vmm` (which every `vmm` command does) stays cheap, and
# Machine loads the native CPU glue only for commands that run a machine.
_HOMES = {"DiskConfig": "vmm.config", "MachineConfig": "vmm.config", "SerialConfig": "vmm.config",
          "VmmError": "vmm.errors", "Machine": "vmm.machine"}  # fmt: skip


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(name)
