"""vmm: an x86 PC emulator and minimal virtual machine monitor.

The public API for scripts and tests: build a :class:`MachineConfig`, make a
:class:`Machine` from it, ``run()`` it, and look at ``serial_transcript``,
``stages.timeline``, ``screen_text()`` and the returned exit.
"""

from vmm.config import DiskConfig, MachineConfig, SerialConfig
from vmm.errors import VmmError

__version__ = "0.1.0"
__all__ = ["DiskConfig", "Machine", "MachineConfig", "SerialConfig", "VmmError"]


def __getattr__(name: str):
    if name == "Machine":  # imported lazily: it loads the native CPU glue
        from vmm.machine import Machine

        return Machine
    raise AttributeError(name)
