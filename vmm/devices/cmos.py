"""The Motorola MC146818 real-time clock and its CMOS RAM, as the PC/AT uses them.

Source: Motorola, "MC146818A Real-Time Clock Plus RAM" datasheet: "Address Map", "Time,
Calendar and Alarm Locations", registers A-D; the PC/AT CMOS layout (0x0E-0x3F) from the
IBM PC/AT Technical Reference and the extensions Bochs and QEMU place in it
(0x34/0x35 memory above 16 MiB, 0x38/0x3D boot order, 0x5B-0x5D memory above 4 GiB).
Ports: 0x70 index (bit 7 disables NMI), 0x71 data.

Emulated: the time and date from a start time (a fixed epoch unless the machine passes
another) advanced by virtual time, in BCD or binary and 12- or 24-hour form per register
B, the SET bit, UIP for the last 244 us of each second, the periodic, alarm and
update-ended interrupts on IRQ8 with register C read-clear, the PC's configuration bytes
and a checksum over 0x10-0x2D.
Not emulated: the divider chain (register A DV bits other than the time base), square
wave output, daylight saving (DSE), and the periodic flag PF while PIE is clear.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from typing import Any

from vmm.clock import VirtualClock
from vmm.devices.base import Device
from vmm.devices.ioport import from_bcd, read_split, to_bcd, write_split
from vmm.irq import IrqLine, NullIrqLine

NS_PER_S = 1_000_000_000
UIP_NS = 244_000  # UIP is set this long before each update (datasheet, "Update Cycle")
DEFAULT_START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CMOS_SIZE = 128
KIB, MIB = 1024, 1024 * 1024

# Address map (datasheet and PC/AT technical reference).
SECONDS, SECONDS_ALARM, MINUTES, MINUTES_ALARM, HOURS, HOURS_ALARM = range(6)
DAY_OF_WEEK, DAY_OF_MONTH, MONTH, YEAR = 6, 7, 8, 9
REG_A, REG_B, REG_C, REG_D = 0x0A, 0x0B, 0x0C, 0x0D
SHUTDOWN_STATUS, FLOPPY_TYPE, HARD_DISK_TYPE, EQUIPMENT = 0x0F, 0x10, 0x12, 0x14
BASE_MEM_LO, BASE_MEM_HI, EXT_MEM_LO, EXT_MEM_HI = 0x15, 0x16, 0x17, 0x18
HD0_TYPE, HD1_TYPE, HD0_PARAMS, HD1_PARAMS = 0x19, 0x1A, 0x1B, 0x24
CHECKSUM_HI, CHECKSUM_LO = 0x2E, 0x2F
EXT_MEM2_LO, EXT_MEM2_HI, CENTURY = 0x30, 0x31, 0x32
HIGH_MEM_LO, HIGH_MEM_HI = 0x34, 0x35
BOOT_ORDER_3RD, HD_TRANSLATION, BOOT_ORDER_1ST_2ND = 0x38, 0x39, 0x3D
ABOVE_4G = 0x5B  # 0x5B-0x5D, in 64 KiB units
BIOS_OPTIONS = 0x60  # vmm BIOS options (firmware/README.md): bit 0 quiet, bit 1 no serial copy
OPTION_NO_SERIAL_COPY = 0x02
# 0x10: drive types, high nibble A:, low nibble B: (1 360K, 2 1.2M, 3 720K, 4 1.44M, 5 2.88M).
EQUIPMENT_FLOPPY = 0x01  # 0x14 bit 0: floppy drives present (bits 7-6: how many, minus one)

REG_A_UIP = 0x80
REG_B_SET, REG_B_PIE, REG_B_AIE, REG_B_UIE, REG_B_DM, REG_B_24H = 0x80, 0x40, 0x20, 0x10, 0x04, 0x02
REG_C_IRQF, REG_C_PF, REG_C_AF, REG_C_UF = 0x80, 0x40, 0x20, 0x10
REG_D_VRT = 0x80

# Boot device codes in 0x3D/0x38 (Bochs/QEMU convention); 5 is vmm's: the second hard disk.
BOOT_DEVICE_CODES = {"floppy": 1, "hdd": 2, "cdrom": 3, "net": 4, "hdd1": 5}
CLOCK_BYTES = frozenset(range(0x00, 0x0E)) | {CENTURY}
# Bytes that describe this machine's hardware: recomputed at power-on, never taken
# from a saved .nvram image (the RAM size may have changed since it was written).
MEMORY_BYTES = frozenset(
    {BASE_MEM_LO, BASE_MEM_HI, EXT_MEM_LO, EXT_MEM_HI, EXT_MEM2_LO, EXT_MEM2_HI, HIGH_MEM_LO, HIGH_MEM_HI}
    | {ABOVE_4G, ABOVE_4G + 1, ABOVE_4G + 2}
)


def memory_bytes(memory_size: int) -> dict[int, int]:
    """The memory-size bytes QEMU's pc_cmos_init and Bochs's BIOS use, for ``memory_size`` bytes."""
    extended_kib = min(max(0, memory_size // KIB - 1024), 0xFFFF)
    above_16m = min(max(0, (min(memory_size, 1 << 32) - 16 * MIB) // (64 * KIB)), 0xFFFF)
    above_4g = max(0, memory_size - (1 << 32)) // (64 * KIB)
    return {
        BASE_MEM_LO: 640 & 0xFF, BASE_MEM_HI: 640 >> 8,
        EXT_MEM_LO: extended_kib & 0xFF, EXT_MEM_HI: extended_kib >> 8,
        EXT_MEM2_LO: extended_kib & 0xFF, EXT_MEM2_HI: extended_kib >> 8,
        HIGH_MEM_LO: above_16m & 0xFF, HIGH_MEM_HI: above_16m >> 8,
        ABOVE_4G: above_4g & 0xFF, ABOVE_4G + 1: (above_4g >> 8) & 0xFF, ABOVE_4G + 2: (above_4g >> 16) & 0xFF,
    }  # fmt: skip


class Mc146818Cmos(Device):
    """RTC and 128 bytes of CMOS RAM behind ports 0x70/0x71."""

    name = "cmos"
    ports = [(0x70, 2)]

    def __init__(
        self,
        clock: VirtualClock,
        memory_size: int,
        irq8: IrqLine | None = None,
        initial: bytes | None = None,
        start_time: dt.datetime | None = None,
        boot_order: Sequence[str] | None = None,
        disk_sectors: Sequence[int | None] = (),
        floppy_type: int = 0,
        forced_options: int = 0,
    ) -> None:
        self.clock = clock
        self.irq8 = irq8 if irq8 is not None else NullIrqLine(8)
        start = start_time or DEFAULT_START
        if start.tzinfo is None:
            start = start.replace(tzinfo=dt.UTC)
        self.ram = bytearray(CMOS_SIZE)
        if initial is not None:
            self.ram[: len(initial[:CMOS_SIZE])] = initial[:CMOS_SIZE]
        else:
            self._set_default_configuration(boot_order or ["hdd"])
        if boot_order is not None:
            self.set_boot_order(boot_order)
        for index, sectors in enumerate(disk_sectors[:2]):
            self._set_hard_disk(index, sectors)
        self._set_floppy(floppy_type)
        # Option bits this run forces on (`vmm run --no-bios-serial`): the BIOS reads
        # them in 0x60, but they are not kept in the bundle's .nvram.
        self.forced_options = forced_options & 0xFF
        for index, value in memory_bytes(memory_size).items():
            self.ram[index] = value
        self._update_checksum()
        # Seconds since the Unix epoch at virtual time 0 (whole seconds: updates land on
        # the same virtual nanosecond on every run).
        self.base_seconds = calendar.timegm(start.utctimetuple())
        self.frozen_seconds: int | None = None  # the time held while register B SET is 1
        self.index = 0
        self.nmi_disabled = False
        self._periodic_timer = clock.timer(self._on_periodic, "rtc periodic")
        self._second_timer = clock.timer(self._on_second, "rtc update")
        if initial is None:
            self.ram[REG_A] = 0x26  # 32.768 kHz time base, 1024 Hz periodic rate
            self.ram[REG_B] = REG_B_24H  # 24-hour BCD, as PC firmware expects
        self.ram[REG_B] &= ~REG_B_SET & 0xFF
        self.ram[REG_D] = REG_D_VRT
        self.reset()

    def _set_default_configuration(self, boot_order: Sequence[str]) -> None:
        self.ram[FLOPPY_TYPE] = 0x00  # no floppy drives
        self.ram[EQUIPMENT] = 0x02  # no floppy, math coprocessor present, EGA/VGA (bits 5-4 = 0)
        self.ram[CENTURY] = 0x20
        self.set_boot_order(boot_order)

    def set_boot_order(self, devices: Sequence[str]) -> None:
        """Bochs/QEMU boot order: 0x3D low then high nibble, 0x38 high nibble (1 floppy, 2 hdd, 3 cdrom)."""
        codes = [BOOT_DEVICE_CODES.get(device, 0) for device in devices][:3] + [0, 0, 0]
        self.ram[BOOT_ORDER_1ST_2ND] = codes[0] | (codes[1] << 4)
        self.ram[BOOT_ORDER_3RD] = (self.ram[BOOT_ORDER_3RD] & 0x0F) | (codes[2] << 4)

    def _set_hard_disk(self, index: int, sectors: int | None) -> None:
        """Type 47 (user-defined) with a 16-head, 63-sector geometry, as QEMU's cmos_init_hd."""
        shift = 4 if index == 0 else 0
        self.ram[HARD_DISK_TYPE] &= ~(0x0F << shift) & 0xFF
        if not sectors:
            self.ram[HD0_TYPE + index] = 0
            return
        heads, per_track = 16, 63
        cylinders = max(1, min(sectors // (heads * per_track), 16383))
        self.ram[HARD_DISK_TYPE] |= 0x0F << shift
        self.ram[HD0_TYPE + index] = 47
        base = HD0_PARAMS if index == 0 else HD1_PARAMS
        params = [cylinders & 0xFF, cylinders >> 8, heads, 0xFF, 0xFF, 0xC0 | (0x08 if heads > 8 else 0),
                  cylinders & 0xFF, cylinders >> 8, per_track]  # fmt: skip
        self.ram[base : base + 9] = bytes(params)
        self.ram[HD_TRANSLATION] |= 1 << (index * 2)  # LBA translation

    def _set_floppy(self, drive_type: int) -> None:
        """Drive A: of ``drive_type``, or none (0): bytes 0x10 and 0x14 (bits 7-6, 0)."""
        self.ram[FLOPPY_TYPE] = (drive_type & 0x0F) << 4
        if drive_type:
            self.ram[EQUIPMENT] = (self.ram[EQUIPMENT] & 0x3E) | EQUIPMENT_FLOPPY
        else:
            self.ram[EQUIPMENT] &= ~(0xC0 | EQUIPMENT_FLOPPY) & 0xFF

    def _update_checksum(self) -> None:
        total = sum(self.ram[0x10:0x2E])
        self.ram[CHECKSUM_HI], self.ram[CHECKSUM_LO] = total >> 8, total & 0xFF

    def reset(self) -> None:
        # The RESET pin clears PIE, AIE, UIE, SQWE and the flags in register C; time and
        # RAM are battery-backed and survive.
        self.ram[REG_B] &= ~(REG_B_PIE | REG_B_AIE | REG_B_UIE | 0x08) & 0xFF
        self.ram[REG_C] = 0
        self.irq8.lower()
        self._schedule()

    # ---- time ----

    def _now_s_ns(self) -> tuple[int, int]:
        now = self.clock.now_ns()
        return now // NS_PER_S, now % NS_PER_S

    def current_seconds(self) -> int:
        if self.frozen_seconds is not None:
            return self.frozen_seconds
        return self.base_seconds + self._now_s_ns()[0]

    def _encode(self, value: int) -> int:
        return value if self.ram[REG_B] & REG_B_DM else to_bcd(value)

    def _decode(self, value: int) -> int:
        return value if self.ram[REG_B] & REG_B_DM else from_bcd(value)

    def _encode_hour(self, hour: int) -> int:
        if self.ram[REG_B] & REG_B_24H:
            return self._encode(hour)
        return self._encode(hour % 12 or 12) | (0x80 if hour >= 12 else 0)

    def _decode_hour(self, value: int) -> int:
        if self.ram[REG_B] & REG_B_24H:
            return self._decode(value)
        hour = self._decode(value & 0x7F) % 12
        return hour + 12 if value & 0x80 else hour

    def _time_register(self, index: int) -> int:
        when = dt.datetime.fromtimestamp(self.current_seconds(), dt.UTC)
        if index == SECONDS:
            return self._encode(when.second)
        if index == MINUTES:
            return self._encode(when.minute)
        if index == HOURS:
            return self._encode_hour(when.hour)
        if index == DAY_OF_WEEK:
            return self._encode(when.isoweekday() % 7 + 1)  # 1 = Sunday
        if index == DAY_OF_MONTH:
            return self._encode(when.day)
        if index == MONTH:
            return self._encode(when.month)
        if index == YEAR:
            return self._encode(when.year % 100)
        return self._encode(when.year // 100)  # CENTURY

    def _set_time_register(self, index: int, value: int) -> None:
        """A guest sets the clock: rebuild the time from the new field (invalid dates are ignored)."""
        when = dt.datetime.fromtimestamp(self.current_seconds(), dt.UTC)
        try:
            if index == SECONDS:
                when = when.replace(second=self._decode(value))
            elif index == MINUTES:
                when = when.replace(minute=self._decode(value))
            elif index == HOURS:
                when = when.replace(hour=self._decode_hour(value))
            elif index == DAY_OF_MONTH:
                when = when.replace(day=self._decode(value))
            elif index == MONTH:
                when = when.replace(month=self._decode(value))
            elif index == YEAR:
                when = when.replace(year=when.year // 100 * 100 + self._decode(value) % 100)
            elif index == CENTURY:
                when = when.replace(year=self._decode(value) % 100 * 100 + when.year % 100)
        except (ValueError, OverflowError):
            return
        seconds = calendar.timegm(when.utctimetuple())
        if self.frozen_seconds is not None:
            self.frozen_seconds = seconds
        else:
            self.base_seconds = seconds - self._now_s_ns()[0]

    def _uip(self) -> bool:
        if self.ram[REG_B] & REG_B_SET:
            return False
        return self._now_s_ns()[1] >= NS_PER_S - UIP_NS

    # ---- interrupts ----

    def _raise(self, flag: int) -> None:
        self.ram[REG_C] |= flag
        enables = self.ram[REG_B] & (REG_B_PIE | REG_B_AIE | REG_B_UIE)
        # The enable bits line up with the flags they gate (PIE/PF, AIE/AF, UIE/UF).
        if self.ram[REG_C] & enables & 0x70:
            self.ram[REG_C] |= REG_C_IRQF
            self.irq8.raise_()

    def _periodic_ns(self) -> int | None:
        rate = self.ram[REG_A] & 0x0F
        if rate == 0:
            return None
        ticks = 1 << (rate + 6) if rate <= 2 else 1 << (rate - 1)  # in 32.768 kHz periods
        return ticks * NS_PER_S // 32768

    def _schedule(self) -> None:
        now = self.clock.now_ns()
        period = self._periodic_ns()
        if self.ram[REG_B] & REG_B_PIE and period:
            self._periodic_timer.arm((now // period + 1) * period)
        else:
            self._periodic_timer.cancel()
        if self.ram[REG_B] & (REG_B_AIE | REG_B_UIE) and not self.ram[REG_B] & REG_B_SET:
            self._second_timer.arm((now // NS_PER_S + 1) * NS_PER_S)
        else:
            self._second_timer.cancel()

    def _on_periodic(self) -> None:
        self._raise(REG_C_PF)
        self._schedule()

    def _alarm_matches(self) -> bool:
        for alarm, field in ((SECONDS_ALARM, SECONDS), (MINUTES_ALARM, MINUTES), (HOURS_ALARM, HOURS)):
            value = self.ram[alarm]
            if value & 0xC0 != 0xC0 and value != self._time_register(field):  # 11xxxxxx: don't care
                return False
        return True

    def _on_second(self) -> None:
        flags = REG_C_UF | (REG_C_AF if self._alarm_matches() else 0)
        self._raise(flags)
        self._schedule()

    # ---- ports ----

    def read_register(self, index: int) -> int:
        index &= 0x7F
        if index in CLOCK_BYTES and index not in (REG_A, REG_B, REG_C, REG_D) and index not in (1, 3, 5):
            return self._time_register(index)
        if index == REG_A:
            return (self.ram[REG_A] & 0x7F) | (REG_A_UIP if self._uip() else 0)
        if index == REG_C:
            value = self.ram[REG_C]
            self.ram[REG_C] = 0  # read-clear, and the IRQ8 request goes away
            self.irq8.lower()
            return value
        if index == REG_D:
            return REG_D_VRT
        if index == BIOS_OPTIONS:
            return self.ram[index] | self.forced_options
        return self.ram[index]

    def write_register(self, index: int, value: int) -> None:
        index &= 0x7F
        if index in (SECONDS, MINUTES, HOURS, DAY_OF_MONTH, MONTH, YEAR, CENTURY):
            self._set_time_register(index, value)
            if index == CENTURY:
                self.ram[CENTURY] = value
        elif index == REG_B:
            if value & REG_B_SET and self.frozen_seconds is None:
                self.frozen_seconds = self.current_seconds()
            elif not value & REG_B_SET and self.frozen_seconds is not None:
                self.base_seconds = self.frozen_seconds - self._now_s_ns()[0]
                self.frozen_seconds = None
            self.ram[REG_B] = value & (0xFF if not value & REG_B_SET else ~REG_B_UIE & 0xFF)
            self._schedule()
        elif index == REG_A:
            self.ram[REG_A] = value & 0x7F  # UIP is read-only
            self._schedule()
        elif index in (REG_C, REG_D):
            pass  # read-only
        else:
            self.ram[index] = value

    def _read_byte(self, port: int) -> int:
        if port == 0x71:
            return self.read_register(self.index)
        return 0xFF  # the index register is write-only

    def _write_byte(self, port: int, value: int) -> None:
        if port == 0x70:
            self.index = value & 0x7F
            self.nmi_disabled = bool(value & 0x80)
        elif port == 0x71:
            self.write_register(self.index, value)

    def io_read(self, port: int, size: int) -> int:
        return read_split(self._read_byte, port, size)

    def io_write(self, port: int, size: int, value: int) -> None:
        write_split(self._write_byte, port, size, value)

    # ---- the .nvram file ----

    def nvram_bytes(self) -> bytes:
        """The 128 bytes to keep in the bundle's .nvram, with the clock as it reads now."""
        image = bytearray(self.ram)
        for index in (SECONDS, MINUTES, HOURS, DAY_OF_WEEK, DAY_OF_MONTH, MONTH, YEAR, CENTURY):
            image[index] = self._time_register(index)
        image[REG_A] = self.ram[REG_A] & 0x7F
        image[REG_C] = 0
        image[REG_D] = REG_D_VRT
        return bytes(image)

    # ---- persistence ----

    def save(self) -> dict[str, Any]:
        return {
            "ram": bytes(self.ram),
            "base_seconds": self.base_seconds,
            "frozen_seconds": self.frozen_seconds,
            "index": self.index,
            "nmi_disabled": self.nmi_disabled,
            "irq8": self.irq8.level,
            "forced_options": self.forced_options,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.ram = bytearray(state["ram"][:CMOS_SIZE].ljust(CMOS_SIZE, b"\0"))
        self.base_seconds = int(state["base_seconds"])
        frozen = state["frozen_seconds"]
        self.frozen_seconds = None if frozen is None else int(frozen)
        self.index = int(state["index"]) & 0x7F
        self.nmi_disabled = bool(state["nmi_disabled"])
        self.forced_options = int(state.get("forced_options", 0)) & 0xFF
        self.irq8.level = bool(state["irq8"])  # the PIC restores its own view of the line
        self._schedule()
