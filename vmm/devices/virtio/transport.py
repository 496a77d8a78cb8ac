"""Virtio over PCI, the modern (1.x) transport: one PCI function per virtio device.

Source: OASIS "Virtual I/O Device (VIRTIO) Version 1.1": 4.1.2 PCI device discovery
(vendor 0x1AF4, device 0x1040 + virtio device ID, revision 1, subsystem vendor 0x1AF4
and subsystem = device ID), 4.1.4 the vendor capabilities (``virtio_pci_cap``: common
configuration, notifications with ``notify_off_multiplier``, ISR status, device
configuration, PCI configuration access), 4.1.4.3 the common configuration layout,
4.1.4.5 ISR (a read returns the bits and clears them, deasserting INTx), 2.1 device
status (ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK, DEVICE_NEEDS_RESET, FAILED; writing
0 resets), 2.2 feature bits (VIRTIO_F_VERSION_1 must be accepted), 3.1.1 driver
initialization.

Layout of BAR 0 (32-bit memory, 16 KiB): common configuration at 0x0000, ISR at 0x1000,
device configuration at 0x2000, queue notifications at 0x3000 + 4 * queue. Interrupts
are INTx only (no MSI-X: ``config_msix_vector``/``queue_msix_vector`` read NO_VECTOR).
Not emulated: the legacy (0.9.5) I/O-port interface, packed virtqueues, EVENT_IDX and
indirect descriptors (not offered, so a driver never uses them).

Queue registers are frozen once the queue is enabled; a queue whose rings do not fit
guest RAM, or a chain that breaks the rules of vmm.devices.virtio.queue, sets
DEVICE_NEEDS_RESET and raises a configuration interrupt (2.1.2) — the device then takes
nothing more until the driver resets it.
"""

from __future__ import annotations

import struct
from typing import Any

from vmm.devices.pci.function import Bar, PciFunction
from vmm.devices.virtio.queue import Chain, ChainError, SplitQueue
from vmm.memory import GuestMemory

VIRTIO_PCI_VENDOR = 0x1AF4
VIRTIO_PCI_DEVICE_BASE = 0x1040
PCI_CAP_ID_VNDR = 0x09
# virtio_pci_cap cfg_type
VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_CAP_ISR_CFG = 1, 2, 3
VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_CAP_PCI_CFG = 4, 5
# Device status (2.1)
ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK = 1, 2, 4, 8
DEVICE_NEEDS_RESET, FAILED = 0x40, 0x80
# Feature bits (6)
VIRTIO_F_VERSION_1 = 32
# ISR bits (4.1.4.5)
ISR_QUEUE, ISR_CONFIG = 1, 2
VIRTIO_MSI_NO_VECTOR = 0xFFFF

BAR_SIZE = 0x4000
COMMON_OFFSET, ISR_OFFSET, DEVICE_OFFSET, NOTIFY_OFFSET = 0x0000, 0x1000, 0x2000, 0x3000
NOTIFY_MULTIPLIER = 4
COMMON_LENGTH = 0x38
# Common configuration fields: name -> (offset, size) (4.1.4.3).
COMMON_FIELDS = {
    "device_feature_select": (0x00, 4), "device_feature": (0x04, 4), "driver_feature_select": (0x08, 4),
    "driver_feature": (0x0C, 4), "config_msix_vector": (0x10, 2), "num_queues": (0x12, 2),
    "device_status": (0x14, 1), "config_generation": (0x15, 1), "queue_select": (0x16, 2),
    "queue_size": (0x18, 2), "queue_msix_vector": (0x1A, 2), "queue_enable": (0x1C, 2),
    "queue_notify_off": (0x1E, 2), "queue_desc": (0x20, 8), "queue_driver": (0x28, 8),
    "queue_device": (0x30, 8),
}  # fmt: skip

# PCI class codes of the devices, as QEMU presents them (a guest's listing is the same on
# both): network controller, mass storage (SCSI-less "other"), and 00FFh "other" for the
# entropy source and the balloon.
CLASS_BY_DEVICE = {1: 0x020000, 2: 0x010000, 4: 0x00FF00, 5: 0x00FF00}


class VirtioDevice(PciFunction):
    """A virtio device on PCI. Subclasses name the device and implement its queues:

    ``device_type`` (virtio device ID), ``queue_sizes``, ``features`` (device feature
    bits besides VERSION_1), ``config_space()`` (the device configuration bytes),
    ``write_config(offset, data)``, ``process(queue_index)`` (called on a notification
    while the device is live), ``device_reset()``, ``save_device()``/``restore_device()``.
    """

    device_type = 0
    queue_sizes: tuple[int, ...] = ()
    features = 0

    def __init__(self, memory: GuestMemory) -> None:
        super().__init__()
        self.memory = memory
        self.init_header(VIRTIO_PCI_VENDOR, VIRTIO_PCI_DEVICE_BASE + self.device_type,
                         CLASS_BY_DEVICE.get(self.device_type, 0x00FF00), revision=1,
                         subsystem_vendor=VIRTIO_PCI_VENDOR, subsystem=VIRTIO_PCI_DEVICE_BASE + self.device_type,
                         interrupt_pin=1)  # fmt: skip
        self.add_bar(0, Bar(BAR_SIZE))
        queues = len(self.queue_sizes)
        self._cap(VIRTIO_PCI_CAP_COMMON_CFG, COMMON_OFFSET, COMMON_LENGTH)
        self._cap(VIRTIO_PCI_CAP_NOTIFY_CFG, NOTIFY_OFFSET, NOTIFY_MULTIPLIER * max(queues, 1),
                  struct.pack("<I", NOTIFY_MULTIPLIER))  # fmt: skip
        self._cap(VIRTIO_PCI_CAP_ISR_CFG, ISR_OFFSET, 1)
        self._cap(VIRTIO_PCI_CAP_DEVICE_CFG, DEVICE_OFFSET, max(len(self.config_space()), 1))
        self.pci_cfg_cap = self._cap(VIRTIO_PCI_CAP_PCI_CFG, 0, 0, bytes(4))
        self.wmask[self.pci_cfg_cap + 4] = 0xFF  # bar
        self.wmask[self.pci_cfg_cap + 8 : self.pci_cfg_cap + 16] = bytes([0xFF] * 8)  # offset, length
        self.wmask[self.pci_cfg_cap + 16 : self.pci_cfg_cap + 20] = bytes([0xFF] * 4)  # pci_cfg_data
        self.queues = [SplitQueue(size) for size in self.queue_sizes]
        self._transport_reset()

    def _cap(self, cfg_type: int, offset: int, length: int, extra: bytes = b"") -> int:
        # virtio_pci_cap after cap_vndr and cap_next: cap_len, cfg_type, bar, id, padding[2], offset, length
        body = struct.pack("<BBBB2xII", 16 + len(extra), cfg_type, 0, 0, offset, length) + extra
        return self.add_capability(PCI_CAP_ID_VNDR, body)

    def _transport_reset(self) -> None:
        self.device_feature_select = 0
        self.driver_feature_select = 0
        self.driver_features = 0
        self.device_status = 0
        self.config_generation = 0
        self.queue_select = 0
        self.isr = 0
        for queue in self.queues:
            queue.reset()
        self.set_intx(False)

    # ---- what subclasses provide ----

    def config_space(self) -> bytes:
        return b""

    def write_config(self, offset: int, data: bytes) -> None:  # noqa: B027 - optional
        """A driver write into the device configuration (most fields are read-only)."""

    def process(self, queue_index: int) -> None:  # noqa: B027 - optional
        """The driver notified queue ``queue_index``."""

    def device_reset(self) -> None:  # noqa: B027 - optional
        """Forget everything the device model keeps besides the transport state."""

    def save_device(self) -> dict[str, Any]:
        return {}

    def restore_device(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional
        """Restore what save_device returned."""

    # ---- helpers for the device models ----

    @property
    def offered_features(self) -> int:
        return self.features | 1 << VIRTIO_F_VERSION_1

    @property
    def live(self) -> bool:
        """DRIVER_OK set, no reset needed, and bus mastering allowed (DMA on)."""
        status = self.device_status
        return bool(status & DRIVER_OK) and not status & (DEVICE_NEEDS_RESET | FAILED) and self.bus_master

    def negotiated(self, bit: int) -> bool:
        return bool(self.driver_features >> bit & 1)

    def pop(self, queue_index: int) -> Chain | None:
        """The next checked chain of an enabled queue, or None (empty, off, or broken)."""
        queue = self.queues[queue_index]
        if not queue.enabled or not self.live:
            return None
        try:
            return queue.pop(self.memory)
        except ChainError as exc:
            self.needs_reset(str(exc))
            return None

    def complete(self, queue_index: int, chain: Chain, written: int) -> None:
        """Hand ``chain`` back with ``written`` bytes and interrupt unless the driver opted out."""
        queue = self.queues[queue_index]
        queue.push(self.memory, chain.head, written)
        if not queue.interrupts_suppressed(self.memory):
            self.interrupt(ISR_QUEUE)

    def interrupt(self, bits: int) -> None:
        self.isr |= bits
        self.set_intx(True)

    def config_changed(self) -> None:
        self.config_generation = (self.config_generation + 1) & 0xFF
        if self.device_status & DRIVER_OK:
            self.interrupt(ISR_CONFIG)

    def needs_reset(self, why: str) -> None:
        self.last_error = why
        if not self.device_status & DEVICE_NEEDS_RESET:
            self.device_status |= DEVICE_NEEDS_RESET
            self.config_changed()

    last_error = ""

    # ---- BAR 0 ----

    def bar_read(self, index: int, offset: int, size: int) -> int:
        if COMMON_OFFSET <= offset < COMMON_OFFSET + COMMON_LENGTH:
            return int.from_bytes(self._common_bytes()[offset : offset + size].ljust(size, b"\0"), "little")
        if offset == ISR_OFFSET:
            value, self.isr = self.isr, 0
            self.set_intx(False)
            return value
        if DEVICE_OFFSET <= offset < NOTIFY_OFFSET:
            inside = offset - DEVICE_OFFSET
            data = self.config_space()[inside : inside + size]
            return int.from_bytes(data.ljust(size, b"\0"), "little")
        return 0

    def bar_write(self, index: int, offset: int, size: int, value: int) -> None:
        if COMMON_OFFSET <= offset < COMMON_OFFSET + COMMON_LENGTH:
            self._common_write(offset, size, value)
        elif DEVICE_OFFSET <= offset < NOTIFY_OFFSET:
            inside = offset - DEVICE_OFFSET
            if inside < len(self.config_space()):
                self.write_config(inside, value.to_bytes(size, "little"))
        elif NOTIFY_OFFSET <= offset < NOTIFY_OFFSET + NOTIFY_MULTIPLIER * len(self.queues):
            queue_index = (offset - NOTIFY_OFFSET) // NOTIFY_MULTIPLIER
            if self.live and self.queues[queue_index].enabled:
                self.process(queue_index)

    # ---- common configuration ----

    def _selected_queue(self) -> SplitQueue | None:
        return self.queues[self.queue_select] if self.queue_select < len(self.queues) else None

    def _common_values(self) -> dict[str, int]:
        queue = self._selected_queue()
        select = self.device_feature_select
        return {
            "device_feature_select": select,
            "device_feature": (self.offered_features >> (32 * select)) & 0xFFFFFFFF if select < 2 else 0,
            "driver_feature_select": self.driver_feature_select,
            "driver_feature": (self.driver_features >> (32 * self.driver_feature_select)) & 0xFFFFFFFF
            if self.driver_feature_select < 2 else 0,
            "config_msix_vector": VIRTIO_MSI_NO_VECTOR,
            "num_queues": len(self.queues),
            "device_status": self.device_status,
            "config_generation": self.config_generation,
            "queue_select": self.queue_select,
            "queue_size": queue.size if queue else 0,
            "queue_msix_vector": VIRTIO_MSI_NO_VECTOR,
            "queue_enable": int(queue.enabled) if queue else 0,
            "queue_notify_off": self.queue_select if queue else 0,
            "queue_desc": queue.desc if queue else 0,
            "queue_driver": queue.driver if queue else 0,
            "queue_device": queue.device if queue else 0,
        }  # fmt: skip

    def _common_bytes(self) -> bytes:
        image = bytearray(COMMON_LENGTH)
        for name, value in self._common_values().items():
            offset, size = COMMON_FIELDS[name]
            image[offset : offset + size] = value.to_bytes(size, "little")
        return bytes(image)

    def _common_write(self, offset: int, size: int, value: int) -> None:
        image = bytearray(self._common_bytes())
        end = min(offset + size, COMMON_LENGTH)
        image[offset:end] = value.to_bytes(size, "little")[: end - offset]
        for name, (field_offset, field_size) in COMMON_FIELDS.items():
            if field_offset < end and offset < field_offset + field_size:
                self._set_common(name, int.from_bytes(image[field_offset : field_offset + field_size], "little"))

    def _set_common(self, name: str, value: int) -> None:
        queue = self._selected_queue()
        if name == "device_feature_select":
            self.device_feature_select = value
        elif name == "driver_feature_select":
            self.driver_feature_select = value
        elif name == "driver_feature":
            if self.device_status & FEATURES_OK or self.driver_feature_select > 1:
                return  # features are fixed once accepted
            shift = 32 * self.driver_feature_select
            self.driver_features = (self.driver_features & ~(0xFFFFFFFF << shift)) | value << shift
        elif name == "device_status":
            self._set_status(value)
        elif name == "queue_select":
            self.queue_select = value
        elif queue is None or queue.enabled or self.device_status & DRIVER_OK:
            return  # registers of a live queue are frozen (and there is no queue past num_queues)
        elif name == "queue_size":
            queue.size = value
        elif name == "queue_desc":
            queue.desc = value
        elif name == "queue_driver":
            queue.driver = value
        elif name == "queue_device":
            queue.device = value
        elif name == "queue_enable" and value == 1:
            try:
                queue.check_layout(self.memory)
            except ChainError as exc:
                self.needs_reset(str(exc))
                return
            queue.enabled = True

    def _set_status(self, value: int) -> None:
        value &= 0xFF
        if value == 0:
            self._transport_reset()
            self.device_reset()
            return
        if value & FEATURES_OK and not self.device_status & FEATURES_OK:
            acceptable = not self.driver_features & ~self.offered_features and self.negotiated(VIRTIO_F_VERSION_1)
            if not acceptable:
                value &= ~FEATURES_OK  # 3.1.1 step 6: the driver re-reads and sees it refused
        # The driver cannot set DEVICE_NEEDS_RESET nor clear it without a reset.
        self.device_status = (value & ~DEVICE_NEEDS_RESET) | (self.device_status & DEVICE_NEEDS_RESET)

    # ---- the VIRTIO_PCI_CAP_PCI_CFG window (4.1.4.7) ----

    def config_read(self, offset: int, size: int) -> int:
        data_at = self.pci_cfg_cap + 16
        if data_at <= offset < data_at + 4:
            window = self._cfg_window(size)
            if window is not None:
                return self.bar_read(0, window, size)
        return super().config_read(offset, size)

    def config_write(self, offset: int, size: int, value: int) -> None:
        data_at = self.pci_cfg_cap + 16
        if data_at <= offset < data_at + 4:
            window = self._cfg_window(size)
            if window is not None:
                self.bar_write(0, window, size, value)
            return
        super().config_write(offset, size, value)

    def _cfg_window(self, size: int) -> int | None:
        cap = self.pci_cfg_cap
        bar = self.config[cap + 4]
        offset, length = struct.unpack_from("<II", self.config, cap + 8)
        if bar != 0 or length != size or offset % size or offset + size > BAR_SIZE:
            return None
        return offset

    # ---- Device ----

    def reset(self) -> None:
        super().reset()
        self._transport_reset()
        self.device_reset()

    def save(self) -> dict[str, Any]:
        state = super().save()
        state["virtio"] = {
            "device_feature_select": self.device_feature_select, "driver_feature_select": self.driver_feature_select,
            "driver_features": self.driver_features, "device_status": self.device_status,
            "config_generation": self.config_generation, "queue_select": self.queue_select, "isr": self.isr,
            "queues": [queue.save() for queue in self.queues], "device": self.save_device(),
        }  # fmt: skip
        return state

    def restore(self, state: dict[str, Any]) -> None:
        super().restore(state)
        virtio = state["virtio"]
        for key in ("device_feature_select", "driver_feature_select", "driver_features", "device_status",
                    "config_generation", "queue_select", "isr"):  # fmt: skip
            setattr(self, key, virtio[key])
        for queue, saved in zip(self.queues, virtio["queues"], strict=True):
            queue.restore(saved)
        self.restore_device(virtio["device"])
