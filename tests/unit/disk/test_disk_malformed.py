"""Malformed VMDK files get one DiskError naming the file and the field, never a traceback."""

from __future__ import annotations

import os
import struct

import pytest

from vmm.disk.open import open_disk
from vmm.disk.vmdk.create import create_vmdk
from vmm.disk.vmdk.descriptor import parse_descriptor
from vmm.disk.vmdk.disk import VmdkDisk
from vmm.errors import DiskError


def patch_header(path, offset: int, fmt: str, value: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(struct.pack(fmt, value))


@pytest.fixture
def sparse(tmp_path):
    path = tmp_path / "disk.vmdk"
    create_vmdk(path, 1024, grain_size=16)
    return path


def test_grain_size_not_a_power_of_two(sparse):
    patch_header(sparse, 20, "<Q", 3)
    with pytest.raises(DiskError, match=r"disk.vmdk: sparse header: grainSize 3 is not a power of two"):
        open_disk(sparse)


def test_bad_magic_in_a_split_extent(tmp_path):
    path = tmp_path / "x.vmdk"
    create_vmdk(path, 512, "twoGbMaxExtentSparse", grain_size=16, extent_sectors=256)
    with open(tmp_path / "x-s002.vmdk", "r+b") as f:
        f.write(b"XXXX")
    with pytest.raises(DiskError, match=r"x-s002.vmdk: sparse header: bad magic b'XXXX'"):
        open_disk(path)


def test_truncated_header(tmp_path):
    path = tmp_path / "t.vmdk"
    path.write_bytes(b"KDMV" + bytes(96))
    with pytest.raises(DiskError, match=r"t.vmdk: sparse header: truncated \(100 of 512 bytes\)"):
        open_disk(path)


def test_grain_directory_outside_the_file(sparse):
    patch_header(sparse, 56, "<Q", 1 << 30)
    with pytest.raises(DiskError, match=r"disk.vmdk: sparse header: gdOffset 1073741824 .* outside the file"):
        open_disk(sparse)


def test_grain_table_outside_the_file(sparse):
    with VmdkDisk(sparse, read_only=True) as disk:
        gd_offset = disk.sparse_extents()[0].header.gd_offset
    patch_header(sparse, gd_offset * 512, "<I", 1 << 28)
    with open_disk(sparse) as disk, pytest.raises(DiskError, match=r"grain directory entry 0: grain table .* outside"):
        disk.read(0, 1)


def test_grain_outside_the_file(sparse):
    with VmdkDisk(sparse, read_only=True) as disk:
        gt = disk.sparse_extents()[0].tables.gd[0]
    patch_header(sparse, gt * 512, "<I", 1 << 20)
    with open_disk(sparse) as disk, pytest.raises(DiskError, match=r"grain 0 points at sector 1048576"):
        disk.read(0, 1)


def test_missing_extent_file(tmp_path):
    path = tmp_path / "f.vmdk"
    create_vmdk(path, 64, "monolithicFlat")
    os.unlink(tmp_path / "f-flat.vmdk")
    with pytest.raises(DiskError, match=r"f-flat.vmdk: extent file is missing"):
        open_disk(path)


def test_unknown_create_type(tmp_path):
    path = tmp_path / "f.vmdk"
    create_vmdk(path, 64, "monolithicFlat")
    path.write_text(path.read_text().replace("monolithicFlat", "monolithicBanana"))
    with pytest.raises(DiskError, match=r"f.vmdk: descriptor: createType 'monolithicBanana' is unknown"):
        open_disk(path)


def test_loop_in_the_parent_chain(tmp_path):
    a, b = tmp_path / "a.vmdk", tmp_path / "b.vmdk"
    create_vmdk(a, 64, "monolithicFlat")
    create_vmdk(b, 64, "monolithicFlat")
    cid_a = parse_descriptor(a.read_text(), "a").cid
    cid_b = parse_descriptor(b.read_text(), "b").cid
    for path, parent, cid in ((a, "b.vmdk", cid_b), (b, "a.vmdk", cid_a)):
        text = path.read_text().replace("parentCID=ffffffff", f'parentCID={cid:08x}\nparentFileNameHint="{parent}"')
        path.write_text(text)
    with pytest.raises(DiskError, match=r"parentFileNameHint 'a.vmdk' makes a loop in the parent chain"):
        open_disk(a)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('version=1\nCID=1\ncreateType="monolithicFlat"\nRW 10 FLAT "x"\n', "FLAT needs an offset"),
        ('version=1\nCID=zz\ncreateType="monolithicFlat"\nRW 10 ZERO\n', "CID 'zz' is not a 32-bit hexadecimal"),
        ('version=1\nCID=1\ncreateType="monolithicFlat"\nRW ten FLAT "x" 0\n', "malformed extent line"),
        ('version=1\nCID=1\ncreateType="monolithicFlat"\nRW 10 VMFSSPARSE "x"\n', "VMFSSPARSE is not supported"),
        ('version=1\nCID=1\ncreateType="fullDevice"\nRW 10 ZERO\n', "'fullDevice' is not supported"),
        ("version=1\nCID=1\n\nRW 10 ZERO\n", "createType is missing"),
        ('version=1\nCID=1\ncreateType="monolithicFlat"\n', "no extent lines"),
        ('version=1\nCID=1\nparentCID=2\ncreateType="monolithicFlat"\nRW 1 ZERO\n', "parentFileNameHint is missing"),
        ("version=1\nnonsense line\n", "line 2: cannot parse"),
    ],
)
def test_descriptor_errors(text, message):
    with pytest.raises(DiskError, match=r"^d.vmdk: descriptor.*" + message):
        parse_descriptor(text, "d.vmdk")


def test_descriptor_tolerates_crlf_comments_and_nul_padding(tmp_path):
    path = tmp_path / "d.vmdk"
    (tmp_path / "d-flat.vmdk").write_bytes(bytes(4096))
    text = (
        "# Disk DescriptorFile\r\nversion=1\r\nCID=abc\r\nparentCID=ffffffff\r\n"
        'createType="monolithicFlat"\r\n# extents\r\nRW 8 FLAT "d-flat.vmdk" 0\r\n'
        'ddb.adapterType = "ide"\r\n'
    )
    path.write_bytes(text.encode() + bytes(300))
    with open_disk(path) as disk:
        assert disk.capacity == 8
        assert disk.cid == 0xABC
        assert disk.descriptor.ddb["ddb.adapterType"] == "ide"
