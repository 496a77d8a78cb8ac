"""vmm's .nvram: the firmware settings of one VM, in VMware's ``MRVN`` envelope.

VMware's .nvram is ``MRVN``, a u32, then entries ``{char name[4]; char sub[4]; u32 len;
u8 data[len]}`` (little-endian); its BIOS and EFI entries are opaque to outsiders. vmm
keeps the envelope and defines its own entries, so the file is recognisable but is not
meant to be read by VMware (nor VMware's by vmm). Layout, vmm format version 1::

    off  size
    0    4    magic "MRVN"
    4    4    u32 envelope version = 1
    8    ...  entries, each: name[4] sub[4] u32 len, then len bytes of data
              VMM_/VERS  4 bytes  u32 vmm nvram format version (1); always first
              CMOS/BYTE  128      the CMOS/RTC RAM, bytes 0x00-0x7F
              BOOT/ORDR  n        boot order, ASCII, comma separated: "hdd,cdrom"
              OPTS/BIOS  n        BIOS options, ASCII lines "name=0|1": quiet, serialConsole
              (other)    n        entries vmm does not know are kept as they are
              CKSM/CRC3  4        u32 CRC-32 (zlib) of every byte before this entry;
                                  always last, nothing may follow it

The BIOS only ever sees the CMOS. The boot order and options live in CMOS bytes as the
Bochs/QEMU BIOS convention has them, and :meth:`Nvram.apply_to_cmos` /
:meth:`Nvram.update_from_cmos` keep the entries and the CMOS copy consistent:

- 0x3D: bits 3-0 first boot device, bits 7-4 second; 0x38 bits 7-4 third
  (0 none, 1 floppy, 2 hdd, 3 cdrom, 4 net; vmm's 5 = hdd1, the second hard disk alone).
- 0x60 (vmm's; QEMU keeps its CPU count in 0x5F): bit 0 quiet POST, bit 1 no serial
  console mirror.

When the entries and the CMOS copy disagree in a file (written by hand or by an older
vmm), the BOOT and OPTS entries win. The RTC time (0x00-0x09) and the memory size bytes
are the machine's to fill at power-on; they are stored but not trusted.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from vmm.confine import printable
from vmm.devices.cmos import BOOT_DEVICE_CODES
from vmm.errors import ConfigError, ImageError, VmmError
from vmm.fileio import atomic_write

MAGIC = b"MRVN"
ENVELOPE_VERSION = 1
FORMAT_VERSION = 1
ENTRY_HEADER = struct.Struct("<4s4sI")
CMOS_SIZE = 128

ENTRY_VERSION = (b"VMM_", b"VERS")
ENTRY_CMOS = (b"CMOS", b"BYTE")
ENTRY_BOOT = (b"BOOT", b"ORDR")
ENTRY_OPTIONS = (b"OPTS", b"BIOS")
ENTRY_CHECKSUM = (b"CKSM", b"CRC3")

# CMOS offsets (Bochs/QEMU BIOS convention for the boot order; 0x60 is vmm's).
CMOS_BOOT_1_2 = 0x3D
CMOS_BOOT_3 = 0x38
CMOS_OPTIONS = 0x60
OPTION_QUIET = 0x01
OPTION_NO_SERIAL_CONSOLE = 0x02

BOOT_DEVICES = BOOT_DEVICE_CODES
BOOT_CODES = {code: name for name, code in BOOT_DEVICES.items()}
MAX_BOOT_DEVICES = 3

DEFAULT_BOOT_ORDER = ["hdd", "cdrom"]
DEFAULT_OPTIONS = {"quiet": False, "serialConsole": True}
OPTION_KEYS = {"bios.quiet": "quiet", "bios.serialConsole": "serialConsole"}


class ForeignNvramError(ImageError):
    """An MRVN file that vmm did not write (VMware's own .nvram): readable by nobody here."""


def default_cmos() -> bytearray:
    cmos = bytearray(CMOS_SIZE)
    cmos[0x0A] = 0x26  # RTC status A: 32.768 kHz time base, 1024 Hz periodic rate
    cmos[0x0B] = 0x02  # RTC status B: 24-hour mode, BCD
    cmos[0x0D] = 0x80  # RTC status D: valid RAM and time
    return cmos


def parse_boot_order(text: str, what: str = "boot.order") -> list[str]:
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not names:
        raise ConfigError(f"{what}: empty boot order (use e.g. hdd,cdrom)")
    for name in names:
        if name not in BOOT_DEVICES:
            raise ConfigError(f"{what}: unknown boot device {name!r} (choose from {', '.join(BOOT_DEVICES)})")
    if len(set(names)) != len(names):
        raise ConfigError(f"{what}: {text!r} names a device twice")
    if len(names) > MAX_BOOT_DEVICES:
        raise ConfigError(f"{what}: at most {MAX_BOOT_DEVICES} boot devices, not {len(names)}")
    return names


def parse_bool(text: str, what: str) -> bool:
    value = text.strip().upper()
    if value in ("TRUE", "FALSE"):
        return value == "TRUE"
    raise ConfigError(f"{what}: {text!r} is not a boolean (use TRUE or FALSE)")


@dataclass
class Nvram:
    cmos: bytes = field(default_factory=lambda: bytes(default_cmos()))
    boot_order: list[str] = field(default_factory=lambda: list(DEFAULT_BOOT_ORDER))
    options: dict[str, bool] = field(default_factory=lambda: dict(DEFAULT_OPTIONS))
    # Entries vmm does not know, kept in order: (name, sub, data).
    extra: list[tuple[bytes, bytes, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sync_cmos()

    # ---- CMOS <-> entries ----------------------------------------------------------

    def apply_to_cmos(self, cmos: bytearray) -> None:
        """Write the boot order and options into ``cmos`` (other bits are left alone)."""
        codes = [BOOT_DEVICES[name] for name in self.boot_order[:MAX_BOOT_DEVICES]] + [0, 0, 0]
        cmos[CMOS_BOOT_1_2] = codes[0] | codes[1] << 4
        cmos[CMOS_BOOT_3] = (cmos[CMOS_BOOT_3] & 0x0F) | codes[2] << 4
        flags = cmos[CMOS_OPTIONS] & ~(OPTION_QUIET | OPTION_NO_SERIAL_CONSOLE) & 0xFF
        if self.options.get("quiet", False):
            flags |= OPTION_QUIET
        if not self.options.get("serialConsole", True):
            flags |= OPTION_NO_SERIAL_CONSOLE
        cmos[CMOS_OPTIONS] = flags

    def update_from_cmos(self, cmos: bytes) -> None:
        """Take the CMOS as the guest left it: keep a copy, read back boot order and options.

        The bytes come from the guest, so nothing in them can fail: an unknown device
        code ends the boot list, and an empty list falls back to the default.
        """
        if len(cmos) != CMOS_SIZE:
            raise ValueError(f"CMOS is {CMOS_SIZE} bytes, not {len(cmos)}")
        order: list[str] = []
        for code in (cmos[CMOS_BOOT_1_2] & 0x0F, cmos[CMOS_BOOT_1_2] >> 4, cmos[CMOS_BOOT_3] >> 4):
            name = BOOT_CODES.get(code)
            if name is None:
                break
            if name not in order:
                order.append(name)
        self.boot_order = order or list(DEFAULT_BOOT_ORDER)
        self.options["quiet"] = bool(cmos[CMOS_OPTIONS] & OPTION_QUIET)
        self.options["serialConsole"] = not cmos[CMOS_OPTIONS] & OPTION_NO_SERIAL_CONSOLE
        self.cmos = bytes(cmos)
        self._sync_cmos()

    def _sync_cmos(self) -> None:
        if len(self.cmos) != CMOS_SIZE:
            raise ValueError(f"CMOS is {CMOS_SIZE} bytes, not {len(self.cmos)}")
        cmos = bytearray(self.cmos)
        self.apply_to_cmos(cmos)
        self.cmos = bytes(cmos)

    # ---- the CLI's keys ------------------------------------------------------------

    def keys(self) -> list[str]:
        return ["boot.order", *OPTION_KEYS, *(f"cmos.{i:#04x}" for i in range(CMOS_SIZE))]

    def get(self, key: str) -> str:
        lower = key.lower()
        if lower == "boot.order":
            return ",".join(self.boot_order)
        for name, option in OPTION_KEYS.items():
            if lower == name.lower():
                return "TRUE" if self.options.get(option) else "FALSE"
        if lower.startswith("cmos."):
            return f"{self.cmos[self._cmos_index(key)]:#04x}"
        raise self._unknown(key)

    def set(self, key: str, value: str) -> None:
        lower = key.lower()
        if lower == "boot.order":
            self.boot_order = parse_boot_order(value, key)
            self._sync_cmos()
            return
        for name, option in OPTION_KEYS.items():
            if lower == name.lower():
                self.options[option] = parse_bool(value, key)
                self._sync_cmos()
                return
        if lower.startswith("cmos."):
            index = self._cmos_index(key)
            try:
                byte = int(value, 0)
            except ValueError:
                raise ConfigError(f"{key}: {value!r} is not a number") from None
            if not 0 <= byte <= 0xFF:
                raise ConfigError(f"{key}: {value!r} does not fit in a byte (0-0xff)")
            cmos = bytearray(self.cmos)
            cmos[index] = byte
            self.update_from_cmos(bytes(cmos))
            return
        raise self._unknown(key)

    @staticmethod
    def _cmos_index(key: str) -> int:
        try:
            index = int(key[5:], 0)
        except ValueError:
            index = -1
        if not 0 <= index < CMOS_SIZE:
            raise ConfigError(f"{key}: a CMOS key is cmos.0xNN with NN from 0x00 to 0x7f")
        return index

    @staticmethod
    def _unknown(key: str) -> ConfigError:
        return ConfigError(f"unknown nvram key {key!r} (known: boot.order, bios.quiet, bios.serialConsole, cmos.0xNN)")

    # ---- the file ------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        options = "".join(f"{name}={int(value)}\n" for name, value in sorted(self.options.items()))
        entries = [
            (*ENTRY_VERSION, struct.pack("<I", FORMAT_VERSION)),
            (*ENTRY_CMOS, self.cmos),
            (*ENTRY_BOOT, ",".join(self.boot_order).encode("ascii")),
            (*ENTRY_OPTIONS, options.encode("ascii")),
            *self.extra,
        ]
        out = bytearray(MAGIC + struct.pack("<I", ENVELOPE_VERSION))
        for name, sub, data in entries:
            out += ENTRY_HEADER.pack(name, sub, len(data)) + data
        crc = zlib.crc32(out)
        out += ENTRY_HEADER.pack(*ENTRY_CHECKSUM, 4) + struct.pack("<I", crc)
        return bytes(out)

    def save(self, path: Path | str) -> None:
        try:
            atomic_write(Path(path), self.to_bytes())
        except OSError as exc:  # a full disk: the old file is still there, whole
            raise VmmError(f"{printable(path)}: cannot write: {exc.strerror} (the previous file is kept)") from None

    @classmethod
    def load(cls, path: Path | str) -> Nvram:
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ImageError(f"{path}: no such file") from None
        except OSError as exc:
            raise ImageError(f"{path}: cannot read: {exc.strerror}") from None
        return cls.parse(data, str(path))

    @classmethod
    def parse(cls, data: bytes, name: str = "<nvram>") -> Nvram:
        def fail(offset: int, what: str) -> ImageError:
            return ImageError(f"{printable(name)}: offset {offset:#x}: {what}")

        if len(data) < 8:
            raise fail(0, f"file is {len(data)} bytes, too short for the MRVN header")
        if data[:4] != MAGIC:
            raise fail(0, f"bad magic {data[:4]!r} (expected b'MRVN': not an nvram file)")
        (envelope,) = struct.unpack_from("<I", data, 4)
        if envelope != ENVELOPE_VERSION:
            raise fail(4, f"envelope version {envelope} is not {ENVELOPE_VERSION}")
        entries: dict[tuple[bytes, bytes], tuple[int, bytes]] = {}
        extra: list[tuple[bytes, bytes, bytes]] = []
        offset = 8
        checksum_at = None
        while offset < len(data):
            if len(data) - offset < ENTRY_HEADER.size:
                raise fail(offset, f"truncated entry header ({len(data) - offset} of {ENTRY_HEADER.size} bytes)")
            tag, sub, length = ENTRY_HEADER.unpack_from(data, offset)
            start = offset + ENTRY_HEADER.size
            label = f"entry {printable(tag.decode('latin-1'))}/{printable(sub.decode('latin-1'))}"
            if length > len(data) - start:
                raise fail(offset, f"truncated {label}: {length} bytes of data, {len(data) - start} left in the file")
            if (tag, sub) in entries:
                raise fail(offset, f"{label} appears twice")
            if (tag, sub) == ENTRY_CHECKSUM:
                checksum_at = offset
                if length != 4:
                    raise fail(offset, f"{label} has {length} bytes, not 4")
                if start + 4 != len(data):
                    raise fail(start + 4, f"{len(data) - start - 4} bytes after the checksum entry")
            entries[(tag, sub)] = (offset, data[start : start + length])
            if (tag, sub) not in (ENTRY_VERSION, ENTRY_CMOS, ENTRY_BOOT, ENTRY_OPTIONS, ENTRY_CHECKSUM):
                extra.append((tag, sub, data[start : start + length]))
            offset = start + length
        if checksum_at is None:
            raise fail(len(data), "no CKSM/CRC3 checksum entry at the end (file cut short?)")
        (stored,) = struct.unpack_from("<I", data, checksum_at + ENTRY_HEADER.size)
        computed = zlib.crc32(data[:checksum_at])
        if stored != computed:
            raise fail(checksum_at, f"checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")

        if ENTRY_VERSION not in entries:
            raise ForeignNvramError(f"{printable(name)}: offset 0x8: no VMM_/VERS entry: not a vmm nvram (VMware's?)")
        version_at, version = entries[ENTRY_VERSION]
        if len(version) != 4 or struct.unpack("<I", version)[0] != FORMAT_VERSION:
            raise fail(version_at, f"unsupported vmm nvram format version (this vmm reads {FORMAT_VERSION})")
        nvram = cls(extra=extra)
        if ENTRY_CMOS in entries:
            cmos_at, cmos = entries[ENTRY_CMOS]
            if len(cmos) != CMOS_SIZE:
                raise fail(cmos_at, f"CMOS/BYTE entry has {len(cmos)} bytes, not {CMOS_SIZE}")
            nvram.update_from_cmos(cmos)
        if ENTRY_BOOT in entries:
            boot_at, boot = entries[ENTRY_BOOT]
            try:
                nvram.boot_order = parse_boot_order(boot.decode("ascii"), "BOOT/ORDR")
            except (UnicodeDecodeError, ConfigError) as exc:
                raise fail(boot_at, f"bad boot order {boot!r}: {exc}") from None
        if ENTRY_OPTIONS in entries:
            opts_at, opts = entries[ENTRY_OPTIONS]
            for line in opts.split(b"\n"):
                if not line:
                    continue
                key, sep, value = line.partition(b"=")
                option = key.decode("latin-1")
                if not sep or value not in (b"0", b"1") or option not in DEFAULT_OPTIONS:
                    raise fail(opts_at, f"bad OPTS/BIOS line {line!r} (expected quiet=0|1 or serialConsole=0|1)")
                nvram.options[option] = value == b"1"
        nvram._sync_cmos()
        return nvram

    def describe(self) -> str:
        """The settings, one per line, as ``vmm nvram show`` prints them."""
        lines = [
            f"boot.order = {self.get('boot.order')}",
            *(f"{key} = {self.get(key)}" for key in OPTION_KEYS),
        ]
        for row in range(0, CMOS_SIZE, 16):
            lines.append(f"cmos {row:#04x}: " + " ".join(f"{b:02x}" for b in self.cmos[row : row + 16]))
        for tag, sub, data in self.extra:
            lines.append(f"(kept) {tag.decode('latin-1')}/{sub.decode('latin-1')}: {len(data)} bytes")
        return "\n".join(lines)
