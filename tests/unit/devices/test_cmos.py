"""MC146818 CMOS/RTC: what a BIOS and a kernel read from ports 0x70/0x71."""

from __future__ import annotations

import datetime as dt

from vmm.clock import VirtualClock
from vmm.devices.cmos import Mc146818Cmos
from vmm.irq import IrqLine

MIB = 1024 * 1024


def make(memory: int = 64 * MIB, **kwargs) -> tuple[Mc146818Cmos, list[int], list[tuple[int, bool]]]:
    insns = [0]
    clock = VirtualClock(mhz=100)
    clock.attach(lambda: insns[0])
    irq_log: list[tuple[int, bool]] = []
    irq = IrqLine(8, lambda n, level: irq_log.append((n, level)))
    return Mc146818Cmos(clock, memory, irq, **kwargs), insns, irq_log


def rd(cmos: Mc146818Cmos, index: int) -> int:
    cmos.io_write(0x70, 1, index)
    return cmos.io_read(0x71, 1)


def wr(cmos: Mc146818Cmos, index: int, value: int) -> None:
    cmos.io_write(0x70, 1, index)
    cmos.io_write(0x71, 1, value)


def word(cmos: Mc146818Cmos, lo: int) -> int:
    return rd(cmos, lo) | rd(cmos, lo + 1) << 8


def test_memory_bytes_64_mib() -> None:
    cmos, _, _ = make(64 * MIB)
    assert word(cmos, 0x15) == 640
    assert word(cmos, 0x17) == 63 * 1024
    assert word(cmos, 0x30) == 63 * 1024
    assert word(cmos, 0x34) == (64 - 16) * MIB // 65536
    assert [rd(cmos, i) for i in (0x5B, 0x5C, 0x5D)] == [0, 0, 0]


def test_memory_bytes_512_mib_and_caps() -> None:
    cmos, _, _ = make(512 * MIB)
    assert word(cmos, 0x17) == 0xFFFF  # capped
    assert word(cmos, 0x30) == 0xFFFF
    assert word(cmos, 0x34) == (512 - 16) * MIB // 65536
    small, _, _ = make(8 * MIB)
    assert word(small, 0x17) == 7 * 1024 and word(small, 0x34) == 0
    big, _, _ = make(4096 * MIB)
    assert word(big, 0x34) == 0xFF00  # 4 GiB - 16 MiB in 64 KiB units


def test_configuration_bytes() -> None:
    cmos, _, _ = make(boot_order=["cdrom", "hdd", "floppy"], disk_sectors=[16 * 63 * 100])
    assert rd(cmos, 0x10) == 0
    assert rd(cmos, 0x14) == 0x02
    assert rd(cmos, 0x32) == 0x20
    assert rd(cmos, 0x3D) == 0x23
    assert rd(cmos, 0x38) >> 4 == 1
    assert rd(cmos, 0x12) == 0xF0 and rd(cmos, 0x19) == 47
    assert word(cmos, 0x1B) == 100 and rd(cmos, 0x1D) == 16 and rd(cmos, 0x23) == 63
    assert rd(cmos, 0x2E) << 8 | rd(cmos, 0x2F) == sum(  # big-endian checksum
        rd(cmos, i) for i in range(0x10, 0x2E)
    )
    default, _, _ = make()
    assert rd(default, 0x3D) == 0x02


def test_time_bcd_and_binary_advancing_with_virtual_time() -> None:
    cmos, insns, _ = make(start_time=dt.datetime(2026, 1, 1, 23, 59, 58, tzinfo=dt.UTC))
    assert [rd(cmos, i) for i in (0, 2, 4, 7, 8, 9, 0x32)] == [0x58, 0x59, 0x23, 0x01, 0x01, 0x26, 0x20]
    assert rd(cmos, 6) == 5  # Thursday (1 = Sunday)
    insns[0] = 3 * 100_000_000  # 3 s at 100 MHz
    assert [rd(cmos, i) for i in (0, 2, 4, 7, 8, 9)] == [0x01, 0x00, 0x00, 0x02, 0x01, 0x26]
    wr(cmos, 0x0B, 0x06)  # binary, 24 h
    assert [rd(cmos, i) for i in (0, 7, 9, 0x32)] == [1, 2, 26, 20]
    wr(cmos, 0x0B, 0x04)  # binary, 12 h
    insns[0] += 13 * 3600 * 100_000_000
    assert rd(cmos, 4) == 0x80 | 1  # 1 pm


def test_default_epoch_is_fixed() -> None:
    cmos, _, _ = make()
    assert [rd(cmos, i) for i in (0, 2, 4, 7, 8, 9)] == [0, 0, 0, 1, 1, 0x26]


def test_guest_sets_the_clock_with_set_bit() -> None:
    cmos, insns, _ = make()
    wr(cmos, 0x0B, 0x82)  # SET
    wr(cmos, 0x04, 0x12)
    wr(cmos, 0x02, 0x34)
    insns[0] = 5 * 100_000_000
    assert rd(cmos, 0) == 0x00  # frozen while SET
    wr(cmos, 0x0B, 0x02)
    insns[0] = 7 * 100_000_000
    assert [rd(cmos, 4), rd(cmos, 2), rd(cmos, 0)] == [0x12, 0x34, 0x02]


def test_uip_window() -> None:
    cmos, insns, _ = make()
    insns[0] = 50_000_000  # 0.5 s
    assert not rd(cmos, 0x0A) & 0x80
    insns[0] = 99_990_000  # 100 us before the update
    assert rd(cmos, 0x0A) & 0x80


def test_register_c_read_clears_and_periodic_irq8() -> None:
    cmos, insns, irq_log = make()
    wr(cmos, 0x0A, 0x2F)  # rate 15: 500 ms
    wr(cmos, 0x0B, 0x42)  # PIE
    insns[0] = 60_000_000
    cmos.clock.run_due()
    assert irq_log == [(8, True)]
    assert rd(cmos, 0x0C) == 0xC0
    assert irq_log[-1] == (8, False)
    assert rd(cmos, 0x0C) == 0x00


def test_update_and_alarm_interrupts() -> None:
    cmos, insns, irq_log = make()
    wr(cmos, 0x01, 0x02)  # alarm at 00:00:02
    wr(cmos, 0x03, 0xC0)
    wr(cmos, 0x05, 0xC0)
    wr(cmos, 0x0B, 0x22)  # AIE only
    for second in (1, 2):
        insns[0] = second * 100_000_000
        cmos.clock.run_due()
        flags = rd(cmos, 0x0C)
        assert flags == (0xB0 if second == 2 else 0x10)


def test_nvram_image_round_trip_keeps_guest_bytes() -> None:
    cmos, _, _ = make()
    wr(cmos, 0x40, 0xAB)
    wr(cmos, 0x3D, 0x03)
    image = cmos.nvram_bytes()
    assert len(image) == 128 and image[0x40] == 0xAB
    again, _, _ = make(memory=128 * MIB, initial=image)
    assert rd(again, 0x40) == 0xAB and rd(again, 0x3D) == 0x03
    assert word(again, 0x34) == (128 - 16) * MIB // 65536  # memory bytes follow this machine
    assert rd(again, 0x0C) == 0 and rd(again, 0x0D) == 0x80


def test_nmi_bit_and_index() -> None:
    cmos, _, _ = make()
    cmos.io_write(0x70, 1, 0x8F)
    assert cmos.nmi_disabled
    cmos.io_write(0x71, 1, 0x0A)
    assert rd(cmos, 0x0F) == 0x0A


def test_save_restore_behaves_identically() -> None:
    cmos, insns, _ = make()
    wr(cmos, 0x0B, 0x52)  # PIE + UIE
    wr(cmos, 0x50, 0x77)
    insns[0] = 123_456_789
    cmos.clock.run_due()
    copy, insns2, _ = make()
    insns2[0] = insns[0]
    copy.restore(cmos.save())
    for step in range(1, 5):
        insns[0] = insns2[0] = 123_456_789 + step * 40_000_000
        cmos.clock.run_due()
        copy.clock.run_due()
        assert [rd(cmos, i) for i in (0, 0x0A, 0x0C, 0x50)] == [rd(copy, i) for i in (0, 0x0A, 0x0C, 0x50)]
