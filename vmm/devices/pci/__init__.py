"""The PCI bus of the `pc` machine: host bridge, PIIX3 PIRQ router, functions, BARs."""

from vmm.devices.pci.bus import HostBridge, PciBus, Piix3IsaBridge, describe, pirq_link
from vmm.devices.pci.function import Bar, PciFunction

__all__ = ["Bar", "HostBridge", "PciBus", "PciFunction", "Piix3IsaBridge", "describe", "pirq_link"]
