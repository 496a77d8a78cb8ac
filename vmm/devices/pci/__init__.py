"""The PCI bus of the `pc` machine: host bridge, PIIX3 PIRQ router, functions, BARs.

Each name is imported from its module on first use (PEP 562): the flag parser reads
vmm.devices.pci.options without loading the bus.
"""

from __future__ import annotations

from vmm.lazy import exports

_HOMES = {
    "HostBridge": "vmm.devices.pci.bus",
    "PciBus": "vmm.devices.pci.bus",
    "Piix3IsaBridge": "vmm.devices.pci.bus",
    "describe": "vmm.devices.pci.bus",
    "pirq_link": "vmm.devices.pci.bus",
    "Bar": "vmm.devices.pci.function",
    "PciFunction": "vmm.devices.pci.function",
}
__all__ = sorted(_HOMES)

__getattr__ = exports(__name__, globals(), _HOMES)
