"""The .vmx dictionary: byte-identical round trips, edits, escapes, malformed lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmm.bundle.vmx import VmxFile, escape_value, unescape_value
from vmm.errors import ConfigError

# Modelled on the .vmx VMware Fusion writes for a "Debian 11 console" VM (EFI, NVMe disk,
# SATA CD-ROM, NAT e1000e), with comments and escapes added the way people edit them.
FUSION_DEBIAN = (
    b'.encoding = "UTF-8"\n'
    b"# Debian 11 console, as VMware Fusion 13 wrote it (comments added by hand)\n"
    b'config.version = "8"\n'
    b'virtualHW.version = "20"\n'
    b'pciBridge0.present = "TRUE"\n'
    b'pciBridge4.present = "TRUE"\n'
    b'pciBridge4.virtualDev = "pcieRootPort"\n'
    b'pciBridge4.functions = "8"\n'
    b'vmci0.present = "TRUE"\n'
    b'hpet0.present = "TRUE"\n'
    b'nvram = "Debian 11 console.nvram"\n'
    b'virtualHW.productCompatibility = "hosted"\n'
    b'powerType.powerOff = "soft"\n'
    b'powerType.powerOn = "soft"\n'
    b'displayName = "Debian 11 console"\n'
    b'firmware = "efi"\n'
    b'guestOS = "debian11-64"\n'
    b'tools.syncTime = "TRUE"\n'
    b'sound.autoDetect = "TRUE"\n'
    b'sound.virtualDev = "hdaudio"\n'
    b'sound.fileName = "-1"\n'
    b'sound.present = "FALSE"\n'
    b'numvcpus = "2"\n'
    b'cpuid.coresPerSocket = "1"\n'
    b"memsize = 2048   # MB, unquoted on purpose\n"
    b'mem.hotadd = "TRUE"\n'
    b"\n"
    b"# disks\n"
    b'nvme0.present = "TRUE"\n'
    b'nvme0:0.fileName = "Virtual Disk.vmdk"\n'
    b'nvme0:0.present = "TRUE"\n'
    b'sata0.present = "TRUE"\n'
    b'sata0:1.deviceType = "cdrom-image"\n'
    b'sata0:1.fileName = "/Users/me/Downloads/debian-11.6.0-amd64-netinst.iso"\n'
    b'sata0:1.present = "TRUE"\n'
    b'usb.present = "TRUE"\n'
    b'ehci.present = "TRUE"\n'
    b'svga.graphicsMemoryKB = "262144"\n'
    b'ethernet0.connectionType = "nat"\n'
    b'ethernet0.addressType = "generated"\n'
    b'ethernet0.virtualDev = "e1000e"\n'
    b'ethernet0.linkStatePropagation.enable = "TRUE"\n'
    b'ethernet0.present = "TRUE"\n'
    b'extendedConfigFile = "Debian 11 console.vmxf"\n'
    b'floppy0.present = "FALSE"\n'
    b'uuid.bios = "56 4d 3b 1a 2c 11 9e 0f-8a 44 9b 5c 21 07 d0 6e"\n'
    b'annotation = "Debian 11 with the |22console|22 task|0AInstalled from netinst|7Cno GUI"\n'
    b'ethernet0.generatedAddress = "00:0c:29:62:d3:5f"\n'
    b"ethernet0.generatedAddressOffset = 0\n"
    b"cleanShutdown =\n"
    b'\tcheckpoint.vmState = ""   # not suspended\n'
)


def test_fusion_vmx_round_trips_byte_for_byte() -> None:
    vmx = VmxFile.parse(FUSION_DEBIAN, "Debian 11 console.vmx")
    assert vmx.to_bytes() == FUSION_DEBIAN
    assert vmx.get("annotation") == 'Debian 11 with the "console" task\nInstalled from netinst|no GUI'
    assert vmx.get("MEMSIZE") == "2048"
    assert vmx.get("cleanShutdown") == ""
    assert vmx.get("checkpoint.vmState") == ""
    assert vmx.keys()[:3] == [".encoding", "config.version", "virtualHW.version"]


def test_round_trip_through_a_file_with_bom_and_crlf(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + FUSION_DEBIAN.replace(b"\n", b"\r\n").rstrip(b"\r\n")  # no final newline
    path = tmp_path / "vm.vmx"
    path.write_bytes(data)
    vmx = VmxFile.load(path)
    vmx.save()
    assert path.read_bytes() == data
    assert [p.name for p in tmp_path.iterdir()] == ["vm.vmx"]  # no temporary file left


def test_set_keeps_order_case_and_comment_and_appends_new_keys() -> None:
    vmx = VmxFile.parse(FUSION_DEBIAN)
    vmx.set("MemSize", "64")
    vmx.set("displayName", 'say "hi" | bye\x01\x7f\ttab')
    vmx.set("vmm.accel", "unicorn")
    vmx.delete("sound.fileName")
    text = vmx.to_bytes().decode()
    assert 'memsize = "64"   # MB, unquoted on purpose\n' in text
    assert 'displayName = "say |22hi|22 |7C bye|01|7F\ttab"\n' in text
    assert text.endswith('# not suspended\nvmm.accel = "unicorn"\n')
    assert "sound.fileName" not in text
    # Unchanged lines are untouched, and setting a key to its value changes nothing.
    assert 'nvme0:0.fileName = "Virtual Disk.vmdk"\n' in text
    before = vmx.to_bytes()
    vmx.set("memsize", "64")
    assert vmx.to_bytes() == before
    reparsed = VmxFile.parse(vmx.to_bytes())
    assert reparsed.get("displayname") == 'say "hi" | bye\x01\x7f\ttab'


def test_escapes_follow_vmware() -> None:
    assert escape_value('a"b|c\n\x00\x1f\x7f\té') == "a|22b|7Cc|0A|00|1F|7F\té"
    assert unescape_value("|22|7c|0A") == '"|\n'
    assert unescape_value("a|zz|2") == "a|zz|2"  # not an escape: kept as written
    assert unescape_value("caf|C3|A9") == "café"  # escapes are bytes of the file's encoding


def test_windows_1252_file_round_trips() -> None:
    data = '.encoding = "windows-1252"\ndisplayName = "Café"\n'.encode("cp1252") + b'x = "\x81"\n'
    vmx = VmxFile.parse(data)
    assert vmx.get("displayName") == "Café"
    assert vmx.to_bytes() == data


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('memsize = "64', "bad.vmx:3: unterminated quoted value for key 'memsize'"),
        ('memsize = "64" MB', "bad.vmx:3: unexpected text 'MB' after the value of key 'memsize'"),
        ('mem size = "64"', "bad.vmx:3: key 'mem size' contains whitespace"),
        ("memsize", "bad.vmx:3: expected 'name = \"value\"', found 'memsize'"),
        ('= "64"', "bad.vmx:3: missing key before '='"),
        ('memsize = 6"4', "bad.vmx:3: stray '\"' in the value of key 'memsize'"),
    ],
)
def test_malformed_line_names_file_line_and_key(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.vmx"
    path.write_text(f'.encoding = "UTF-8"\n# fine\n{line}\n')
    with pytest.raises(ConfigError) as info:
        VmxFile.load(path)
    assert str(info.value) == f"{tmp_path}/{message}"


def test_unknown_encoding_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"x.vmx:1: unknown .encoding 'klingon'"):
        VmxFile.parse(b'.encoding = "klingon"\n', "x.vmx")


KEYS = st.from_regex(r"[A-Za-z.][A-Za-z0-9_.:-]{0,20}", fullmatch=True).filter(lambda k: k.lower() != ".encoding")
VALUES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


@given(st.lists(st.tuples(KEYS, VALUES), max_size=12))
def test_any_value_survives_set_save_parse(pairs: list[tuple[str, str]]) -> None:
    vmx = VmxFile()
    expected: dict[str, str] = {}
    for key, value in pairs:
        vmx.set(key, value)
        expected[key.lower()] = value
    data = vmx.to_bytes()
    again = VmxFile.parse(data)
    assert again.to_bytes() == data
    assert {k.lower(): v for k, v in again.items() if k != ".encoding"} == expected
