"""vmm's .nvram: round trip, CMOS consistency, and one clear line for each kind of damage."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from vmm.bundle.nvram import Nvram
from vmm.errors import ConfigError, ImageError


def test_round_trip_keeps_settings_and_unknown_entries(tmp_path: Path) -> None:
    nvram = Nvram(extra=[(b"FUTR", b"DATA", b"kept as is")])
    nvram.set("boot.order", "cdrom,hdd,floppy")
    nvram.set("bios.quiet", "true")
    nvram.set("bios.serialConsole", "FALSE")
    nvram.set("cmos.0x40", "0xab")
    path = tmp_path / "vm.nvram"
    nvram.save(path)
    data = path.read_bytes()
    assert data[:8] == b"MRVN" + struct.pack("<I", 1)
    loaded = Nvram.load(path)
    assert loaded.boot_order == ["cdrom", "hdd", "floppy"]
    assert loaded.options == {"quiet": True, "serialConsole": False}
    assert loaded.cmos == nvram.cmos and loaded.cmos[0x40] == 0xAB
    assert loaded.extra == [(b"FUTR", b"DATA", b"kept as is")]
    assert loaded.to_bytes() == data
    assert loaded.get("boot.order") == "cdrom,hdd,floppy"
    assert loaded.get("BIOS.QUIET") == "TRUE"
    assert loaded.get("cmos.0x3d") == "0x23"


def test_apply_to_cmos_uses_the_bochs_boot_bytes_and_option_byte() -> None:
    nvram = Nvram(boot_order=["cdrom", "hdd", "net"], options={"quiet": True, "serialConsole": False})
    cmos = bytearray(128)
    cmos[0x38] = 0x01  # low nibble is not the boot order's: left alone
    cmos[0x60] = 0x80  # other option bits: left alone
    nvram.apply_to_cmos(cmos)
    assert cmos[0x3D] == 0x23  # first cdrom (3), second hdd (2)
    assert cmos[0x38] == 0x41  # third net (4) in the high nibble
    assert cmos[0x60] == 0x83  # quiet, no serial console mirror


def test_update_from_cmos_reads_back_what_the_guest_left() -> None:
    nvram = Nvram()
    cmos = bytearray(nvram.cmos)
    cmos[0x3D], cmos[0x38], cmos[0x60] = 0x02, 0x00, 0x01
    cmos[0x50] = 0x77
    nvram.update_from_cmos(bytes(cmos))
    assert nvram.boot_order == ["hdd"]
    assert nvram.options == {"quiet": True, "serialConsole": True}
    assert nvram.cmos[0x50] == 0x77
    # Junk from the guest never fails: an unknown device code ends the list.
    cmos[0x3D] = 0xF3
    nvram.update_from_cmos(bytes(cmos))
    assert nvram.boot_order == ["cdrom"]
    cmos[0x3D] = 0x0F
    nvram.update_from_cmos(bytes(cmos))
    assert nvram.boot_order == ["hdd", "cdrom"]
    # Setting a CMOS byte through the CLI key keeps the entries consistent too.
    nvram.set("cmos.0x3d", "0x32")
    assert nvram.boot_order == ["hdd", "cdrom"] and nvram.get("boot.order") == "hdd,cdrom"


def _with_checksum(body: bytes) -> bytes:
    return body + b"CKSMCRC3" + struct.pack("<II", 4, zlib.crc32(body))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: b"XRVN" + d[4:], "offset 0x0: bad magic b'XRVN' (expected b'MRVN': not an nvram file)"),
        (lambda d: d[:5], "offset 0x0: file is 5 bytes, too short for the MRVN header"),
        (lambda d: d[:40], "offset 0x18: truncated entry CMOS/BYTE: 128 bytes of data, 4 left in the file"),
        (lambda d: d[:-2], "offset 0x"),  # the checksum entry itself is cut: named with its offset
        (lambda d: d[:100] + bytes([d[100] ^ 1]) + d[101:], "checksum mismatch: stored 0x"),
        (lambda d: d + b"junk", "bytes after the checksum entry"),
        (lambda d: d[: len(d) - 16], "no CKSM/CRC3 checksum entry at the end"),
        (
            lambda d: _with_checksum(d[:8] + b"VMM_VERS" + struct.pack("<II", 4, 1) + b"BOOTORDR\x05\0\0\0tape!"),
            "offset 0x18: bad boot order b'tape!'",
        ),
        (lambda d: _with_checksum(d[:8]), "offset 0x8: no VMM_/VERS entry: not a vmm nvram"),
    ],
)
def test_damaged_file_names_file_and_offset(tmp_path: Path, damage, message: str) -> None:
    path = tmp_path / "vm.nvram"
    path.write_bytes(damage(Nvram().to_bytes()))
    with pytest.raises(ImageError) as info:
        Nvram.load(path)
    assert str(info.value).startswith(f"{path}: offset 0x")
    assert message in str(info.value)


def test_checksum_mismatch_names_the_checksum_offset(tmp_path: Path) -> None:
    data = bytearray(Nvram().to_bytes())
    data[0x30] ^= 0xFF  # inside the CMOS bytes
    path = tmp_path / "vm.nvram"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match=rf"vm.nvram: offset {len(data) - 16:#x}: checksum mismatch"):
        Nvram.load(path)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("boot.order", "hdd,tape", "unknown boot device 'tape'"),
        ("boot.order", "hdd,hdd", "names a device twice"),
        ("boot.order", "hdd,cdrom,floppy,net", "at most 3 boot devices"),
        ("bios.quiet", "maybe", "'maybe' is not a boolean"),
        ("cmos.0x80", "1", "cmos.0xNN with NN from 0x00 to 0x7f"),
        ("cmos.0x10", "256", "does not fit in a byte"),
        ("cmos.0x10", "x", "'x' is not a number"),
        ("bios.colour", "red", "unknown nvram key 'bios.colour'"),
    ],
)
def test_bad_settings_are_refused(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Nvram().set(key, value)
