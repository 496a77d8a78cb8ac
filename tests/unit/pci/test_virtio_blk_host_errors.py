"""A virtio-blk write the host cannot do (disk full) is IOERR for the guest and one line
for the user, as for ATA (tests/unit/devices/test_disk_full.py); the image stays intact.
ENOSPC is injected at os.pwrite; the device is driven by tests/unit/pci/driver.py on a
whole pc machine, so the report goes through the machine's own warning."""

from __future__ import annotations

import struct

import pytest

from tests.unit.devices.test_disk_full import full_disk
from tests.unit.pci.driver import Driver
from vmm.config import DiskConfig, MachineConfig, SerialConfig
from vmm.disk.open import open_disk
from vmm.disk.vmdk.create import create_vmdk
from vmm.machine import Machine

OUT = 1


@pytest.mark.parametrize("kind", ["raw", "vmdk"])
def test_write_on_a_full_host_disk_is_ioerr_and_said_once(tmp_path, monkeypatch, kind):
    path = tmp_path / ("d.img" if kind == "raw" else "d.vmdk")
    if kind == "raw":
        path.write_bytes(bytes(64 * 1024))
    else:
        create_vmdk(path, 128, grain_size=16)
    machine = Machine(MachineConfig(machine="pc", serial=SerialConfig("none"), disks=[DiskConfig("virtio0", path)]))
    warnings: list[str] = []
    machine.warn = warnings.append
    try:
        drv = Driver(machine.pci.blk[0])
        drv.bring_up()
        full_disk(monkeypatch, after_bytes=100)
        for sector in (0, 1):
            drv.submit(0, [struct.pack("<IIQ", OUT, 0, sector), b"\xab" * 512], [1])
            assert drv.buffer_bytes(0, 2) == b"\x01"  # VIRTIO_BLK_S_IOERR
        monkeypatch.undo()
        assert len(warnings) == 1 and "No space left on device" in warnings[0], warnings
        assert "the guest gets I/O errors" in warnings[0]
        assert machine.disk_io_errors == 2
        drv.submit(0, [struct.pack("<IIQ", OUT, 0, 2), b"\xcd" * 512], [1])  # space again: it works
        assert drv.buffer_bytes(0, 2) == b"\x00"
    finally:
        machine.close()
    with open_disk(path, read_only=True) as disk:
        assert disk.read(2, 1) == b"\xcd" * 512
        if kind == "vmdk":
            assert disk.read(0, 2) == bytes(1024)
