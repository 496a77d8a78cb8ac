"""Virtio 1.x devices on PCI, driven as a guest driver drives them (tests/unit/pci/driver.py):
the configuration space the spec requires, negotiation, each device's requests, resets."""

from __future__ import annotations

import struct

import pytest

from tests.unit.pci.driver import Driver
from vmm.devices.virtio.balloon import VirtioBalloon
from vmm.devices.virtio.blk import VirtioBlock
from vmm.devices.virtio.net import VirtioNet
from vmm.devices.virtio.rng import VirtioRng
from vmm.devices.virtio.transport import DEVICE_NEEDS_RESET, FEATURES_OK, ISR_CONFIG, ISR_QUEUE
from vmm.disk.open import open_disk
from vmm.memory import GuestMemory
from vmm.net.backend import LoopbackBackend, PcapTap

MIB = 1 << 20


@pytest.fixture
def memory():
    mem = GuestMemory(16 * MIB)
    yield mem
    mem.close()


@pytest.fixture
def disk(tmp_path):
    path = tmp_path / "disk.img"
    path.write_bytes(bytes(range(256)) * 2 * 2048)  # 1 MiB, sector n starts with byte pattern
    d = open_disk(path)
    yield d, path
    d.close()


def all_devices(memory, disk):
    return {
        "blk": VirtioBlock(memory, disk),
        "net": VirtioNet(memory, bytes.fromhex("525400123456"), LoopbackBackend()),
        "rng": VirtioRng(memory),
        "balloon": VirtioBalloon(memory),
    }


# (virtio device ID, PCI class code as QEMU gives it, number of queues) per virtio 1.1, 5.x
EXPECTED = {"net": (1, 0x020000, 2), "blk": (2, 0x010000, 1), "rng": (4, 0x00FF00, 1), "balloon": (5, 0x00FF00, 2)}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_config_space_has_the_values_the_virtio_spec_requires(memory, disk, kind):
    dev = all_devices(memory, disk[0])[kind]
    virtio_id, class_code, queues = EXPECTED[kind]
    read = dev.config_read
    assert read(0x00, 2) == 0x1AF4  # 4.1.2: vendor
    assert read(0x02, 2) == 0x1040 + virtio_id  # modern device ID
    assert read(0x08, 1) >= 1  # revision: 1 for a modern-only device
    assert read(0x09, 3) == class_code
    assert read(0x0E, 1) == 0  # type 0 header
    assert read(0x2C, 2) == 0x1AF4 and read(0x2E, 2) == 0x1040 + virtio_id  # subsystem
    assert read(0x3D, 1) == 1  # INTA#
    assert read(0x06, 2) & 0x10  # Capabilities List
    caps = {}
    pointer = read(0x34, 1)
    while pointer:
        assert read(pointer, 1) == 0x09  # vendor-specific
        cap_len, cfg_type, bar = read(pointer + 2, 1), read(pointer + 3, 1), read(pointer + 4, 1)
        offset, length = read(pointer + 8, 4), read(pointer + 12, 4)
        caps[cfg_type] = (cap_len, bar, offset, length, pointer)
        pointer = read(pointer + 1, 1)
    assert set(caps) == {1, 2, 3, 4, 5}  # common, notify, ISR, device, PCI cfg access
    assert caps[1][3] >= 0x38 and caps[3][3] >= 1
    assert caps[2][0] == 20 and read(caps[2][4] + 16, 4) == 4  # notify_off_multiplier
    for cfg_type in (1, 2, 3, 4):
        _len, bar, offset, length, _at = caps[cfg_type]
        assert bar == 0 and offset + length <= 0x4000
    dev.config_write(0x10, 4, 0xFFFFFFFF)
    assert dev.config_read(0x10, 4) == 0xFFFFC000  # BAR 0: 16 KiB of 32-bit memory
    drv = Driver(dev)
    drv.bring_up()
    assert drv.common("num_queues") == queues
    assert drv.common("config_msix_vector") == 0xFFFF


def test_features_ok_is_refused_without_version_1(memory, disk):
    drv = Driver(VirtioRng(memory))
    drv.bring_up(features=0)
    assert not drv.common("device_status") & FEATURES_OK


def test_blk_reads_writes_flushes_and_identifies(memory, disk):
    blockdev, path = disk
    dev = VirtioBlock(memory, blockdev, serial="vmm-virtio0")
    drv = Driver(dev)
    drv.bring_up()
    assert drv.device_config(0, 8) == 2048  # capacity in sectors
    drv.submit(0, [struct.pack("<IIQ", 0, 0, 3)], [1024, 1])  # read sectors 3-4
    assert drv.used(0) == [(0, 1025)]
    assert drv.buffer_bytes(0, 1) == (bytes(range(256)) * 4)
    assert drv.buffer_bytes(0, 2) == b"\x00"
    assert drv.isr() == ISR_QUEUE and drv.isr() == 0
    drv.submit(0, [struct.pack("<IIQ", 1, 0, 7), b"\xab" * 512], [1])  # write sector 7
    assert drv.used(0) == [(0, 1)] and drv.buffer_bytes(0, 2) == b"\x00"
    drv.submit(0, [struct.pack("<IIQ", 4, 0, 0)], [1])  # flush
    assert drv.buffer_bytes(0, 1) == b"\x00"
    assert path.read_bytes()[7 * 512 : 8 * 512] == b"\xab" * 512
    drv.submit(0, [struct.pack("<IIQ", 8, 0, 0)], [20, 1])  # get ID
    assert drv.buffer_bytes(0, 1) == b"vmm-virtio0".ljust(20, b"\0")
    drv.submit(0, [struct.pack("<IIQ", 0, 0, 2047)], [1024, 1])  # past the end
    assert drv.buffer_bytes(0, 2) == b"\x01"  # IOERR
    drv.submit(0, [struct.pack("<IIQ", 99, 0, 0)], [1])
    assert drv.buffer_bytes(0, 1) == b"\x02"  # UNSUPP


def test_blk_read_only_disk(memory, tmp_path):
    path = tmp_path / "ro.img"
    path.write_bytes(bytes(4096))
    with open_disk(path, read_only=True) as blockdev:
        drv = Driver(VirtioBlock(memory, blockdev))
        offered = drv.bring_up()
        assert offered >> 5 & 1  # VIRTIO_BLK_F_RO
        drv.submit(0, [struct.pack("<IIQ", 1, 0, 0), b"\x01" * 512], [1])
        assert drv.buffer_bytes(0, 2) == b"\x01"
    assert path.read_bytes() == bytes(4096)


def test_net_mac_link_and_loopback_with_pcap(memory, tmp_path):
    pcap = tmp_path / "tap.pcap"
    backend = PcapTap(LoopbackBackend(), pcap, lambda: 1_500_000_000)
    dev = VirtioNet(memory, bytes.fromhex("525400abcdef"), backend)
    drv = Driver(dev)
    drv.bring_up()
    assert bytes(drv.device_config(i, 1) for i in range(6)) == bytes.fromhex("525400abcdef")
    assert drv.device_config(6, 2) == 1  # link up
    frame = bytes.fromhex("ffffffffffff525400abcdef0806") + bytes(46)
    drv.submit(0, [], [1526], notify=True)  # one receive buffer, posted first
    # the transmit queue uses its own descriptor table (queue 1)
    drv.submit(1, [bytes(12) + frame], [])
    assert drv.used(1) == [(0, 0)]
    assert drv.used(0) == [(0, 12 + len(frame))]
    received = drv.buffer_bytes(0, 0)
    assert received[10:12] == b"\x01\x00" and received[12 : 12 + len(frame)] == frame
    dev.set_link(False)
    assert drv.device_config(6, 2) == 0 and drv.isr() & ISR_CONFIG
    backend.close()
    data = pcap.read_bytes()
    assert data[:4] == struct.pack("<I", 0xA1B23C4D) and data.count(frame) == 2  # out and back


def test_rng_is_seeded_and_deterministic(memory):
    outputs = []
    for _ in range(2):
        drv = Driver(VirtioRng(memory, seed=42))
        drv.bring_up()
        drv.submit(0, [], [64])
        assert drv.used(0) == [(0, 64)]
        outputs.append(drv.buffer_bytes(0, 0))
    assert outputs[0] == outputs[1] and len(set(outputs[0])) > 16


def test_balloon_releases_pages_that_then_read_zero(memory):
    dev = VirtioBalloon(memory)
    drv = Driver(dev)
    drv.bring_up()
    memory.write(0x800000, b"\x5a" * 0x2000)
    dev.set_target(8)
    assert drv.device_config(0, 4) == 2048 and drv.isr() & ISR_CONFIG
    drv.submit(0, [struct.pack("<2I", 0x800, 0x801) + struct.pack("<I", 0xFFFFFF)], [])  # last PFN outside RAM
    assert drv.used(0) == [(0, 0)]
    assert memory.read(0x800000, 0x2000) == bytes(0x2000)
    assert dev.released_pages == 2
    dev.bar_write(0, 0x2004, 4, 2)  # the driver reports `actual`
    assert drv.device_config(4, 4) == 2


def test_broken_chain_sets_needs_reset_and_reset_recovers(memory, disk):
    dev = VirtioBlock(memory, disk[0])
    drv = Driver(dev)
    drv.bring_up()
    desc, avail, _used = drv.rings(0)
    memory.write(desc, struct.pack("<QIHH", 0x300000, 16, 1, 0))  # descriptor 0 -> itself: a loop
    memory.write(avail + 4, b"\0\0")
    memory.write(avail + 2, struct.pack("<H", 1))
    drv.notify(0)
    assert drv.common("device_status") & DEVICE_NEEDS_RESET and drv.isr() & ISR_CONFIG
    assert drv.used(0) == []
    drv.bring_up()
    drv.submit(0, [struct.pack("<IIQ", 0, 0, 0)], [512, 1])
    assert drv.used(0) == [(0, 513)]


def test_queue_registers_are_frozen_once_enabled(memory, disk):
    drv = Driver(VirtioBlock(memory, disk[0]))
    drv.bring_up()
    drv.common("queue_select", 0)
    drv.common("queue_desc", 0xFFFFF000)
    assert drv.common("queue_desc") == drv.rings(0)[0]
    drv.common("queue_select", 7)  # past num_queues: reads zero, writes go nowhere
    assert drv.common("queue_size") == 0
    drv.common("queue_desc", 0x1234)


def test_save_restore_of_a_live_device(memory, disk):
    dev = VirtioBlock(memory, disk[0])
    drv = Driver(dev)
    drv.bring_up()
    drv.submit(0, [struct.pack("<IIQ", 0, 0, 1)], [512, 1])
    state = dev.save()
    twin = VirtioBlock(memory, disk[0])
    twin.restore(state)
    drv.dev = twin
    drv.submit(0, [struct.pack("<IIQ", 0, 0, 2)], [512, 1])
    assert drv.used(0) == [(0, 513), (0, 513)]


def test_balloon_target_at_runtime_raises_a_config_interrupt_and_reports(memory, tmp_path):
    from vmm.config import MachineConfig, SerialConfig
    from vmm.errors import ConfigError
    from vmm.machine import Machine

    dev = VirtioBalloon(memory)
    drv = Driver(dev)
    drv.bring_up()
    assert drv.isr() == 0
    status = dev.set_target(4)
    assert drv.isr() == ISR_CONFIG and drv.device_config(0, 4) == 1024
    assert str(status) == "balloon: target 4 MiB, guest holds 0 MiB, 0 MiB released to the host (of 16 MiB RAM)"
    dev.set_target(4)  # no change: no interrupt
    assert drv.isr() == 0
    for bad in (-1, 17):
        with pytest.raises(ConfigError, match="not between 0 and the guest's 16 MiB"):
            dev.set_target(bad)
    dev.bar_write(0, 0x2004, 4, 1024)  # the driver says it holds the 1024 pages
    assert dev.report().actual_mib == 4
    machine = Machine(MachineConfig(machine="pc", serial=SerialConfig("none")))
    try:
        with pytest.raises(ConfigError, match="no balloon device"):
            machine.pci.set_balloon_target(8)
    finally:
        machine.close()
    machine = Machine(MachineConfig(machine="pc", serial=SerialConfig("none"), balloon=True))
    try:
        assert machine.pci.set_balloon_target(8).target_mib == 8
        assert machine.pci.balloon.num_pages == 2048
    finally:
        machine.close()
