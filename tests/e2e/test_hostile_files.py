"""Hostile or absurd files given to `vmm run`, `vmm disk` and a bundle (issue 23): one line
and the exit status, nothing read or allocated whole."""

from __future__ import annotations

import struct
import subprocess
import sys

import pytest

from tests.conftest import ROOT, require_file
from vmm.bundle.nvram import Nvram
from vmm.bundle.vmx import VmxFile
from vmm.errors import VmmError
from vmm.memory import GuestMemory

MULTIBOOT_ELF = ROOT / "guests" / "build" / "multiboot.elf"


def vmm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vmm", *args], capture_output=True, text=True, timeout=120)


def one_line(done: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vmm: "), done.stderr
    return lines[0]


@pytest.fixture
def huge(tmp_path):
    path = tmp_path / "huge.bin"
    with open(path, "wb") as f:
        f.truncate(4 << 30)  # 4 GiB, sparse: costs nothing unless someone reads it whole
    return path


def test_a_4_gib_bios_is_refused_without_reading_it(huge):
    done = vmm("run", "--bios", str(huge), "--serial", "none")
    assert done.returncode == 1
    assert one_line(done) == f"vmm: {huge}: a BIOS ROM must be 64, 128, 192 or 256 KiB, not more than 262144 bytes"


def test_a_4_gib_kernel_and_module_are_refused_without_reading_them(huge):
    done = vmm("run", "--kernel", str(huge), "--serial", "none", "--mem", "16M")
    assert done.returncode == 1
    assert one_line(done) == f"vmm: {huge}: the kernel file is larger than guest RAM (16 MiB)"
    elf = require_file(MULTIBOOT_ELF, "make -C guests")
    done = vmm("run", "--kernel", str(elf), "--initrd", str(huge), "--serial", "none", "--mem", "16M")
    assert done.returncode == 1
    assert one_line(done) == f"vmm: {huge}: the module is larger than guest RAM (16 MiB)"


def test_an_empty_module_is_loaded_as_an_empty_module(tmp_path):
    elf = require_file(MULTIBOOT_ELF, "make -C guests")
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    done = vmm("run", "--kernel", str(elf), "--initrd", str(empty), "--serial", "none", "--max-insns", "5M")
    assert "Traceback" not in done.stderr and "UcError" not in done.stderr, done.stderr
    assert done.returncode in (0, 33, 124), done.stderr


def test_aout_kludge_kernel_with_nothing_to_load_runs_without_a_traceback(tmp_path):
    magic, flags = 0x1BADB002, 1 << 16
    header = struct.pack(
        "<8I", magic, flags, -(magic + flags) & 0xFFFFFFFF, 0x100000, 0x100000, 0x100000, 0, 0x100020
    )  # load_end_addr == load_addr
    kernel = tmp_path / "aout.bin"
    kernel.write_bytes(header.ljust(4096, b"\xf4"))
    done = vmm("run", "--kernel", str(kernel), "--serial", "none", "--max-insns", "100000")
    assert "Traceback" not in done.stderr and "Invalid argument" not in done.stderr, done.stderr


def test_disk_create_of_100_tib_is_one_line(tmp_path):
    done = vmm("disk", "create", str(tmp_path / "x.vmdk"), "100T")
    assert done.returncode == 1
    path = tmp_path / "x.vmdk"
    assert one_line(done) == f"vmm: {path}: size of 109951162777600 bytes is beyond the 64 TiB vmm creates"
    assert list(tmp_path.iterdir()) == []


def test_guest_ram_the_host_cannot_map_is_one_line(monkeypatch):
    import mmap

    def refuse(*args, **kwargs):
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(mmap, "mmap", refuse)
    with pytest.raises(VmmError) as info:
        GuestMemory(3072 << 20)
    assert str(info.value) == (
        "cannot set up 3072 MiB of guest RAM on this host: Cannot allocate memory (use a smaller --mem or memsize)"
    )


@pytest.mark.parametrize(
    "encoding",
    ["zlib", "base64", "hex", "rot13", "bz2", "utf-16", "punycode", "utf-7", "unicode_escape", "raw_unicode_escape"],
)
def test_vmx_encodings_vmware_does_not_write_are_refused(encoding):
    with pytest.raises(VmmError) as info:
        VmxFile.parse(f'.encoding = "{encoding}"\nmemsize = "64"\n'.encode(), "vm.vmx")
    assert str(info.value).startswith(f"vm.vmx:1: .encoding '{encoding}' is not a text encoding VMware writes")


@pytest.mark.parametrize("encoding", ["UTF-8", "windows-1252", "Shift_JIS", "GBK", "Big5", "ISO-8859-1"])
def test_vmx_encodings_vmware_writes_are_read(encoding):
    vmx = VmxFile.parse(f'.encoding = "{encoding}"\nmemsize = "64"\n'.encode(), "vm.vmx")
    assert vmx.get("memsize") == "64"


def test_nvram_entry_names_are_printed_escaped():
    data = bytearray(Nvram().to_bytes())
    data[8:12] = b"\x1b[2J"  # the first entry's tag: an escape sequence that would clear a terminal
    with pytest.raises(VmmError) as info:
        Nvram.parse(bytes(data), "evil\nname.nvram")
    text = str(info.value)
    assert "\x1b" not in text and "\n" not in text
    assert text.startswith("evil\\nname.nvram: offset ")
