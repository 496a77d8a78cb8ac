"""The ATA data port a block at a time: string reads and writes give the same bytes as word
by word, the Unicorn backend serves `rep insw`/`rep outsw` natively from the device's
block buffer (one Python call per block), and KVM's `rep insw` exits take one call."""

from __future__ import annotations

import pytest

from tests.cpu.test_kvm_backend import FakePlatform, kvm, make_cpu, run_to_stop  # noqa: F401 - the KVM fixtures
from tests.cpu.test_unicorn_backend import StubPlatform
from tests.cpu.test_unicorn_backend import make_cpu as make_unicorn_cpu
from tests.unit.devices.test_ata import MemoryDisk, Rig, sector_numbers
from vmm.cpu.base import StopReason
from vmm.devices.ata import AtaController


@pytest.mark.parametrize("size", [1, 2, 4])
def test_string_read_spanning_blocks_equals_word_by_word(size):
    word_rig, string_rig = Rig(), Rig()
    for rig in (word_rig, string_rig):
        rig.out(0x1F2, 4)
        rig.out(0x1F7, 0xC6)  # SET MULTIPLE MODE: 4 sectors a block
        rig.lba28(0xC4, 100, 10)  # READ MULTIPLE
    by_word = word_rig.read_data(10 * 512 + 64, size)  # 64 bytes past the end read all ones
    by_string = string_rig.ata.io_read_string(0x1F0, size, (10 * 512 + 64) // size)
    assert by_string == by_word
    assert sector_numbers(by_string[: 10 * 512]) == list(range(100, 110))
    assert by_string[10 * 512 :] == b"\xff" * 64
    assert string_rig.irq == word_rig.irq  # an interrupt per block, as word by word
    assert string_rig.status() == word_rig.status() == 0x50


def test_string_write_spanning_blocks_equals_word_by_word():
    data = bytes(range(256)) * 2 * 3
    word_rig, string_rig = Rig(), Rig()
    word_rig.lba28(0x30, 50, 3)
    word_rig.write_data(data)
    string_rig.lba28(0x30, 50, 3)
    string_rig.ata.io_write_string(0x1F0, 2, data)
    assert string_rig.disk.data == word_rig.disk.data
    assert string_rig.disk.data[50 * 512 : 53 * 512] == data
    assert string_rig.irq == word_rig.irq
    assert string_rig.status() == 0x50


def test_string_read_with_no_command_reads_all_ones():
    rig = Rig()
    assert rig.ata.io_read_string(0x1F0, 2, 8) == b"\xff" * 16


class AtaPlatform(StubPlatform):
    """The stub platform with an ATA channel; counts what reaches Python."""

    def __init__(self, ata: AtaController) -> None:
        super().__init__()
        self.ata = ata
        self.data_port_calls = 0

    def io_read(self, port: int, size: int) -> int:
        if 0x1F0 <= port <= 0x1F7:
            self.data_port_calls += port == 0x1F0
            return self.ata.io_read(port, size)
        return super().io_read(port, size)

    def io_write(self, port: int, size: int, value: int) -> None:
        if 0x1F0 <= port <= 0x1F7:
            self.data_port_calls += port == 0x1F0
            self.ata.io_write(port, size, value)
            return
        super().io_write(port, size, value)


READ_THEN_WRITE = """
    xor ax, ax
    mov es, ax
    mov ds, ax
    cld
    # READ SECTORS: 2 sectors from LBA 5 to 0x1000.
    mov dx, 0x1F2
    mov al, 2
    out dx, al
    mov dx, 0x1F3
    mov al, 5
    out dx, al
    xor al, al
    mov dx, 0x1F4
    out dx, al
    mov dx, 0x1F5
    out dx, al
    mov dx, 0x1F6
    mov al, 0xE0
    out dx, al
    mov dx, 0x1F7
    mov al, 0x20
    out dx, al
    mov di, 0x1000
    mov dx, 0x1F0
    mov cx, 512
    rep insw
    # WRITE SECTORS: the first of them to LBA 7.
    mov dx, 0x1F2
    mov al, 1
    out dx, al
    mov dx, 0x1F3
    mov al, 7
    out dx, al
    mov dx, 0x1F7
    mov al, 0x30
    out dx, al
    mov si, 0x1000
    mov dx, 0x1F0
    mov cx, 256
    rep outsw
    mov al, 1
    out 0xF4, al
    hlt
"""


def test_unicorn_serves_rep_insw_and_rep_outsw_natively_one_call_a_block():
    cpu, _stub, memory = make_unicorn_cpu(READ_THEN_WRITE)
    disk = MemoryDisk()
    ata = AtaController(master=disk)
    platform = AtaPlatform(ata)
    platform.cpu = cpu
    cpu.platform = platform
    blocks: list[int] = []

    def done(moved: int) -> None:
        blocks.append(moved)
        ata.data_window_done(moved)

    ata.attach_data_window(lambda port, buf, position, writing: cpu.serve_data_port(port, buf, position, writing, done))
    assert cpu.run(10**6).reason == StopReason.REQUESTED
    assert memory.read(0x1000, 1024) == bytes(disk.data[5 * 512 : 7 * 512])
    assert bytes(disk.data[7 * 512 : 8 * 512]) == bytes(disk.data[5 * 512 : 6 * 512])
    assert platform.data_port_calls == 0  # not one word went through Python
    assert blocks == [512, 512, 512]  # one report per sector moved
    assert ata.io_read(0x1F7, 1) == 0x50


def test_unicorn_data_window_is_settled_when_a_run_stops_mid_block():
    cpu, _stub, memory = make_unicorn_cpu(READ_THEN_WRITE.replace("mov cx, 512\n    rep insw",
                                                                  "mov cx, 100\n    rep insw\n    mov al, 1\n"
                                                                  "    out 0xF4, al\n    hlt"))  # fmt: skip
    ata = AtaController(master=MemoryDisk())
    platform = AtaPlatform(ata)
    platform.cpu = cpu
    cpu.platform = platform
    ata.attach_data_window(lambda port, buf, position, writing: cpu.serve_data_port(port, buf, position, writing,
                                                                                     ata.data_window_done))  # fmt: skip
    assert cpu.run(10**6).reason == StopReason.REQUESTED
    # 100 words moved natively; the device knows it, and the rest reads on from there.
    assert ata.transfer.position == 200
    rest = ata.io_read_string(0x1F0, 2, 512 - 100)
    assert memory.read(0x1000, 200) + rest == bytes(MemoryDisk().data[5 * 512 : 7 * 512])


@pytest.mark.kvm
def test_kvm_rep_insw_is_one_python_call_per_exit(make_cpu):  # noqa: F811
    class StringPlatform(FakePlatform):
        def __init__(self) -> None:
            super().__init__()
            self.string_calls: list[tuple[int, int, int]] = []

        def io_read_string(self, port: int, size: int, count: int) -> bytes:
            self.string_calls.append((port, size, count))
            return bytes(i & 0xFF for i in range(size * count))

        def io_write_string(self, port: int, size: int, data: bytes) -> None:
            self.string_calls.append((port, size, len(data) // size))

    platform = StringPlatform()
    cpu, _ = make_cpu("""
    xor ax, ax
    mov es, ax
    mov di, 0x1000
    mov dx, 0x1F0
    mov cx, 256
    cld
    rep insw
    hlt
""", platform)  # fmt: skip
    assert run_to_stop(cpu, 10_000_000).reason == StopReason.HALT
    assert platform.string_calls == [(0x1F0, 2, 256)]
    assert (0x1F0, 2) not in platform.reads
    assert cpu.memory.read(0x1000, 512) == bytes(i & 0xFF for i in range(512))
