"""The `pc` machine's PCI side: what is plugged into which slot.

00.0 host bridge (i440FX-like), 01.0 PIIX3 PCI-to-ISA bridge (the PIRQ router the
BIOS's ``$PIR`` table names), then the virtio devices from the configuration in a fixed
order — disks, NICs, entropy source, balloon — from slot 2 up, so the same
configuration always gives the same bus. The PCI memory window runs from the top of RAM
to the I/O APIC page; the BIOS assigns memory BARs from 0xE0000000 (as SeaBIOS on QEMU).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from vmm.config import MachineConfig, NicConfig
from vmm.devices.pci.bus import HostBridge, PciBus, Piix3IsaBridge
from vmm.devices.pci.function import PciFunction
from vmm.devices.virtio.balloon import BalloonStatus, VirtioBalloon
from vmm.devices.virtio.blk import VirtioBlock
from vmm.devices.virtio.net import VirtioNet, parse_mac
from vmm.devices.virtio.rng import VirtioRng
from vmm.errors import ConfigError
from vmm.irq import IrqLine
from vmm.memory import GuestMemory
from vmm.net.backend import NetBackend, PcapTap, open_backend

FIRST_DEVICE_SLOT = 2
QEMU_OUI = b"\x52\x54\x00"  # locally administered, as QEMU's default MACs


def default_mac(vm_name: str, slot: str) -> str:
    """A MAC derived from the VM's name and the NIC's slot: the same on every run."""
    digest = hashlib.sha256(f"{vm_name}/{slot}".encode()).digest()
    return ":".join(f"{b:02x}" for b in QEMU_OUI + digest[:3])


def planned_devices(config: MachineConfig) -> list[tuple[str, str]]:
    """(kind, description) of each PCI function the configuration gives, in slot order."""
    if config.machine != "pc":
        return []
    plan = [("host", "host bridge 8086:1237"), ("isa", "PIIX3 ISA bridge 8086:7000 (PIRQ router)")]
    for disk in config.virtio_disks:
        plan.append(("blk", f"virtio-blk 1af4:1042 {disk.slot}: {disk.path}{' (read-only)' if disk.read_only else ''}"))
    for nic in config.nics:
        mac = nic.mac or default_mac(config.name, nic.slot)
        where = f" {nic.options['switch']}" if nic.connection == "switch" else ""
        plan.append(("net", f"virtio-net 1af4:1041 {nic.slot}: MAC {mac}, backend {nic.connection}{where}"))
    if config.rng:
        plan.append(("rng", "virtio-rng 1af4:1044 (seeded)"))
    if config.balloon:
        plan.append(("balloon", f"virtio-balloon 1af4:1045 (target {config.balloon_target_mb} MB)"))
    return plan


class PciBoard:
    """Builds the bus and keeps handles on the devices the machine's users reach for."""

    def __init__(self, config: MachineConfig, memory: GuestMemory, io, disks: dict,
                 irq_sink: Callable[[int, bool], None], now_ns: Callable[[], int],
                 on_io_error: Callable[[Exception], None] | None = None) -> None:  # fmt: skip
        self.bus = PciBus(io, max(memory.size, 0x100000), [IrqLine(n, irq_sink) for n in range(16)])
        self.bus.plug(0, HostBridge())
        router = Piix3IsaBridge(self.bus)
        self.bus.plug(1, router)
        self.bus.set_pirq_router(router)
        self.blk: list[VirtioBlock] = []
        self.nics: list[VirtioNet] = []
        self.rng: VirtioRng | None = None
        self.balloon: VirtioBalloon | None = None
        self.backends: list[NetBackend] = []
        devices: list[PciFunction] = []
        for disk in config.virtio_disks:
            device = VirtioBlock(memory, disks[disk.slot], serial=f"vmm-{disk.slot}", name=disk.slot,
                                 on_io_error=on_io_error)  # fmt: skip
            self.blk.append(device)
            devices.append(device)
        for nic in config.nics:
            backend = self._backend(nic, now_ns, config.name)
            mac = parse_mac(nic.mac or default_mac(config.name, nic.slot))
            device = VirtioNet(memory, mac, backend, name=nic.slot)
            self.nics.append(device)
            devices.append(device)
        if config.rng:
            self.rng = VirtioRng(memory, config.rng_seed)
            devices.append(self.rng)
        if config.balloon:
            self.balloon = VirtioBalloon(memory)
            self.balloon.num_pages = config.balloon_target_mb * 256
            devices.append(self.balloon)
        for slot, device in enumerate(devices, FIRST_DEVICE_SLOT):
            self.bus.plug(slot, device)

    def _backend(self, nic: NicConfig, now_ns: Callable[[], int], vm_name: str) -> NetBackend:
        backend = open_backend(nic.connection, nic.options, name=f"{vm_name}/{nic.slot}", now_ns=now_ns)
        if nic.pcap is not None:
            backend = PcapTap(backend, Path(nic.pcap), now_ns)
        self.backends.append(backend)
        return backend

    def set_balloon_target(self, mib: int) -> BalloonStatus:
        """The monitor's ``balloon MIB``: ask the guest to give back ``mib`` MiB (0: all back).
        ConfigError without a balloon device or for a target outside 0..RAM."""
        if self.balloon is None:
            raise ConfigError("this machine has no balloon device (run it with --balloon, or vmm.balloon in the .vmx)")
        return self.balloon.set_target(mib)

    def close(self) -> None:
        for backend in self.backends:
            backend.close()
